// Shared conversion helpers of the bindings (convert.hpp).
#include "python/convert.hpp"

#include <limits>

namespace rnnkit_py {

std::string int_str(wide_t v) {
  if (v == 0) return "0";
  const bool neg = v < 0;
  unsigned __int128 u = neg ? static_cast<unsigned __int128>(-(v + 1)) + 1
                            : static_cast<unsigned __int128>(v);
  std::string s;
  while (u) {
    s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  }
  return neg ? "-" + s : s;
}

std::string shape_str(const std::vector<wide_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += int_str(shape[i]);
  }
  if (shape.size() == 1) s += ',';
  return s + ')';
}

std::vector<wide_t> shape_of(const py::array& a) {
  return std::vector<wide_t>(a.shape(), a.shape() + a.ndim());
}

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

std::string type_name(const py::handle& obj) {
  return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
}

py::array as_array(const py::handle& obj, const char* name) {
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  try {
    return py::module_::import("numpy").attr("asarray")(obj);
  } catch (py::error_already_set& e) {
    const bool value_error = e.matches(PyExc_ValueError);
    if (!value_error && !e.matches(PyExc_TypeError)) throw;
    const std::string msg = std::string(name) + " must be array-like with a regular shape; got " +
                            type_name(obj) + " that NumPy cannot convert (" +
                            py::str(e.value()).cast<std::string>() + ")";
    if (value_error) throw py::value_error(msg);
    throw py::type_error(msg);
  }
}

bool require_bool(const py::handle& obj, const char* name) {
  if (obj.ptr() == Py_True) return true;
  if (obj.ptr() == Py_False) return false;
  static PyObject* numpy_bool =
      py::object(py::module_::import("numpy").attr("bool_")).release().ptr();
  if (PyObject_TypeCheck(obj.ptr(), reinterpret_cast<PyTypeObject*>(numpy_bool))) {
    return PyObject_IsTrue(obj.ptr()) == 1;
  }
  throw py::type_error(std::string(name) + " must be a bool; got " + type_name(obj));
}

bool is_real_numeric(const py::array& a) {
  const char k = a.dtype().kind();
  return k == 'i' || k == 'u' || k == 'f';
}

bool is_float64(const py::array& a) {
  return a.dtype().kind() == 'f' && a.dtype().itemsize() == 8;
}

namespace {

constexpr int kKernelFlags = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ |
                             py::detail::npy_api::NPY_ARRAY_ALIGNED_ |
                             py::detail::npy_api::NPY_ARRAY_FORCECAST_ |
                             py::detail::npy_api::NPY_ARRAY_ENSUREARRAY_;

// A failed conversion: a MemoryError naming the argument and the bytes its copy needed
// (NumPy's "array is too big" ValueError is the same failure); anything else unchanged.
[[noreturn]] void conversion_failed(const py::array& a, const char* name, const py::dtype& dt) {
  py::error_already_set err;  // fetches NumPy's error
  const wide_t bytes = static_cast<wide_t>(a.size()) * dt.itemsize();
  const bool too_big = bytes > static_cast<wide_t>(std::numeric_limits<index_t>::max());
  if (!err.matches(PyExc_MemoryError) && !(too_big && err.matches(PyExc_ValueError))) throw err;
  const std::string msg = std::string("not enough memory to copy ") + name + ": a C-contiguous " +
                          py::str(dt).cast<std::string>() + " array of shape " +
                          shape_str(shape_of(a)) + " needs " + int_str(bytes) + " bytes";
  PyErr_SetString(PyExc_MemoryError, msg.c_str());
  throw py::error_already_set();
}

}  // namespace

py::array to_kernel_array(const py::array& a, const char* name, const py::dtype& dt) {
  const auto& api = py::detail::npy_api::get();
  const auto* fields = py::detail::array_proxy(a.ptr());
  constexpr int kReady = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ |
                         py::detail::npy_api::NPY_ARRAY_ALIGNED_;
  if (Py_TYPE(a.ptr()) == api.PyArray_Type_ && fields->descr == dt.ptr() &&
      (fields->flags & kReady) == kReady) {
    return a;  // what PyArray_FromAny would return, without its dtype discovery (~0.1 us)
  }
  PyObject* r = py::detail::npy_api::get().PyArray_FromAny_(a.ptr(), dt.inc_ref().ptr(), 0, 0,
                                                           kKernelFlags, nullptr);
  if (!r) conversion_failed(a, name, dt);
  return py::reinterpret_steal<py::array>(r);
}

py::capsule pool_capsule(void* p, std::size_t capacity) {
  struct Owner {
    void* p;
    std::size_t capacity;
  };
  std::unique_ptr<Owner> own;
  py::capsule owner;
  try {
    own.reset(new Owner{p, capacity});
    owner = py::capsule(own.get(), [](void* o) {
      Owner* ow = static_cast<Owner*>(o);
      rnnkit::pool_release(ow->p, ow->capacity);
      delete ow;
    });
  } catch (...) {
    rnnkit::pool_release(p, capacity);
    throw;
  }
  own.release();  // the capsule owns it now
  return owner;
}

}  // namespace rnnkit_py
