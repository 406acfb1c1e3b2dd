// Module functions called through CPython's vectorcall protocol directly (METH_FASTCALL |
// METH_KEYWORDS), for the per-call hot path of <cell>_forward / <cell>_backward.
//
// Why not pybind11's dispatcher: for every argument not passed by position it builds and
// interns a Python string from the C name (PyUnicode_InternFromString: a UTF-8 decode, a hash
// and a dict lookup, ~40 ns each), then copies the arguments into vectors -- ~0.4 us of a
// ~1 us binding for the tutorial SimpleRNN, which has nine arguments. Here the names are
// interned once; a keyword is matched by identity (CPython interns keyword names in calls),
// with a string comparison as the fallback. rnnkit.ops passes everything by position, so its
// calls match no keyword at all.
//
// The Python semantics are CPython's own (the messages follow Python's for a def with the same
// signature): positional-or-keyword parameters, then keyword-only ones, each with an optional
// default; __text_signature__ makes inspect.signature work on the function. Header-only: the
// bindings' one user is register_cells.cpp.
#pragma once
#include <pybind11/detail/exception_translation.h>
#include <pybind11/pybind11.h>

#if defined(__GLIBCXX__)
#include <cxxabi.h>
#endif

#include <string>
#include <utility>
#include <vector>

namespace rnnkit_py {

namespace py = pybind11;

struct Param {
  const char* name;
  py::object default_value;  // a null handle: required
};

// One function's parameters: `positional` leading ones may be passed by position, the rest
// only by keyword.
class CallSignature {
 public:
  CallSignature(const char* function, std::vector<Param> params, int positional);

  // Fills out[0..size()) with borrowed references (the arguments or the defaults). Returns
  // false with a TypeError set when the call does not match the signature.
  bool bind(PyObject* const* args, Py_ssize_t nargsf, PyObject* kwnames, PyObject** out) const;

  int size() const { return static_cast<int>(params_.size()); }
  // "name(x, kernel, bias=None, *, h0=None)\n--\n\n": the docstring prefix CPython parses
  // into __text_signature__.
  std::string text_signature() const;

 private:
  int keyword_index(PyObject* key) const;

  std::string function_;
  std::vector<Param> params_;
  std::vector<py::object> names_;  // interned
  int positional_;
};

// A vectorcall implementation: the module function gets `self` = nullptr.
using FastFunction = PyObject* (*)(PyObject* self, PyObject* const* args, Py_ssize_t nargsf,
                                   PyObject* kwnames);

// Adds `fn` to module m as `name` with docstring `doc` (which should start with
// text_signature()). The method table entry lives as long as the process (never freed: the
// function object may outlive the module).
inline void add_fast_function(py::module_& m, const char* name, FastFunction fn,
                              const std::string& doc);

// Runs f() (returning a py::object) and hands its result to CPython; a C++ exception becomes
// the Python exception pybind11 would have raised (registered translators included) and a
// nullptr result. A forced unwind (pthread_exit, abi::__forced_unwind) passes through.
inline PyObject* translate_exceptions();  // call only inside a catch block

template <class F>
PyObject* guarded(F&& f) {
  try {
    return f().release().ptr();
  } catch (...) {
    return translate_exceptions();
  }
}

// ---------------------------------------------------------------- definitions

inline CallSignature::CallSignature(const char* function, std::vector<Param> params,
                                    int positional)
    : function_(function), params_(std::move(params)), positional_(positional) {
  for (const Param& p : params_) {
    PyObject* s = PyUnicode_InternFromString(p.name);
    if (!s) throw py::error_already_set();
    names_.push_back(py::reinterpret_steal<py::object>(s));
  }
}

inline int CallSignature::keyword_index(PyObject* key) const {
  for (int i = 0; i < size(); ++i) {
    if (names_[i].ptr() == key) return i;
  }
  // Not interned (a dict built at run time, **{"x": ...} with a computed key): compare text.
  for (int i = 0; i < size(); ++i) {
    const int eq = PyUnicode_Compare(names_[i].ptr(), key);
    if (eq == 0) return i;
    if (eq == -1 && PyErr_Occurred()) PyErr_Clear();
  }
  return -1;
}

inline bool CallSignature::bind(PyObject* const* args, Py_ssize_t nargsf, PyObject* kwnames,
                         PyObject** out) const {
  const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  const int n = size();
  if (nargs > positional_) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %d positional argument%s (%zd given)",
                 function_.c_str(), positional_, positional_ == 1 ? "" : "s", nargs);
    return false;
  }
  for (int i = 0; i < n; ++i) out[i] = i < nargs ? args[i] : nullptr;
  const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, k);
    const int i = keyword_index(key);
    if (i < 0) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'",
                   function_.c_str(), key);
      return false;
    }
    if (out[i]) {
      PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
                   function_.c_str(), params_[i].name);
      return false;
    }
    out[i] = args[nargs + k];
  }
  for (int i = 0; i < n; ++i) {
    if (out[i]) continue;
    out[i] = params_[i].default_value.ptr();
    if (!out[i]) {
      PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", function_.c_str(),
                   params_[i].name);
      return false;
    }
  }
  return true;
}

inline std::string CallSignature::text_signature() const {
  std::string s = function_ + "(";
  for (int i = 0; i < size(); ++i) {
    if (i) s += ", ";
    if (i == positional_) s += "*, ";
    s += params_[i].name;
    if (params_[i].default_value) s += "=" + py::repr(params_[i].default_value).cast<std::string>();
  }
  return s + ")\n--\n\n";
}

inline void add_fast_function(py::module_& m, const char* name, FastFunction fn,
                              const std::string& doc) {
  // Never freed: CPython keeps a pointer to the entry in the function object.
  char* doc_copy = new char[doc.size() + 1];
  doc.copy(doc_copy, doc.size());
  doc_copy[doc.size()] = '\0';
  auto* def = new PyMethodDef{name, reinterpret_cast<PyCFunction>(reinterpret_cast<void*>(fn)),
                              METH_FASTCALL | METH_KEYWORDS, doc_copy};
  py::object module_name = m.attr("__name__");
  PyObject* f = PyCFunction_NewEx(def, nullptr, module_name.ptr());
  if (!f) throw py::error_already_set();
  m.add_object(name, py::reinterpret_steal<py::object>(f));
}

inline PyObject* translate_exceptions() {
#if defined(__GLIBCXX__)
  // pthread_exit's unwind must reach the thread's start unchanged (as in pybind11's own
  // dispatcher): rethrow it before anything looks at it.
  try {
    throw;
  } catch (abi::__forced_unwind&) {
    throw;
  } catch (...) {
  }
#endif
  py::detail::try_translate_exceptions();
  return nullptr;
}

}  // namespace rnnkit_py
