// The only pybind11 file: validate arguments, allocate outputs and workspace, release the
// GIL, call the kernel. No math here. Error messages are part of the API (SPEC section 4)
// and are identical to rnnkit.reference's; tests/test_validation.py checks both.
//
// Reliability rules (tests/test_hostile_inputs.py):
//   * every conversion and allocation is checked: a failure is a Python exception (a
//     MemoryError naming the argument and the bytes it needed), never a null dereference;
//   * sizes are checked in exact (128-bit) arithmetic before anything is allocated;
//   * the kernels only see C-contiguous, element-aligned arrays of their dtype (cells.hpp);
//   * the cache owns every array backward reads: nothing in it aliases caller memory;
//   * a cache instance that no forward call produced (__new__, copy.copy) is rejected;
//   * the GIL is released in exactly one place, run_without_gil.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "rnnkit/block_pool.hpp"
#include "rnnkit/cells.hpp"
#include "rnnkit/dispatch.hpp"
#include "rnnkit/threadpool.hpp"
#include "python/interrupt_hook.hpp"

namespace py = pybind11;
using rnnkit::Activation;
using rnnkit::Cell;
using rnnkit::Dims;
using rnnkit::index_t;
using rnnkit::SeqOptions;

namespace {

// Exact arithmetic for size checks and for shapes in messages (G*H may not fit in int64).
using wide_t = __int128;

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

// ---------------------------------------------------------------- the GIL

// Runs f (a kernel call: raw pointers only, no Python API) with the GIL released.
//
// The GIL is released and re-acquired by explicit calls in the normal flow, not by a
// destructor: when the interpreter exits while a daemon thread is in a kernel, CPython
// < 3.14 ends that thread inside PyEval_RestoreThread with pthread_exit, whose forced unwind
// (abi::__forced_unwind) must pass through here untouched -- a noexcept destructor on its
// way (pybind11's gil_scoped_release) calls std::terminate. Better still, a thread that
// finishes its kernel while the interpreter is finalizing never asks for the GIL back: it
// parks forever (as CPython 3.14 itself does), so no Python object is released without the
// GIL; the process exit ends it. (The thread running the finalization may call kernels:
// it saw the flag already set on entry, and gets its GIL back as usual.)
//
// With the GIL re-held, a Python error raised meanwhile (a signal handler's
// KeyboardInterrupt, set through an interrupt hook) becomes this call's exception.
template <class F>
void run_without_gil(F&& f) {
  const bool finalizing_on_entry = rnnkit_interpreter_finalizing();
  PyThreadState* state = PyEval_SaveThread();
  try {
    f();
  } catch (...) {  // re-acquire, then rethrow whatever it was (never swallowed)
    PyEval_RestoreThread(state);
    throw;
  }
  if (!finalizing_on_entry && rnnkit_interpreter_finalizing()) {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(24));
  }
  PyEval_RestoreThread(state);
  if (PyErr_Occurred()) throw py::error_already_set();
}

// ---------------------------------------------------------------- messages and checks

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

const char* cell_name(Cell cell) {
  switch (cell) {
    case Cell::SimpleRNN: return "simple_rnn";
    case Cell::LSTM: return "lstm";
    default: return "gru";
  }
}

// np.asarray(obj) without a Python round trip when obj is already an ndarray. NumPy's own
// refusal (a ragged nested list, ...) is re-raised naming the argument, with the same type.
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

// A flag argument: exactly a Python bool or a NumPy bool (never a string or a number, whose
// truth value is not what the caller meant: bool("False") is True).
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

// Any 8-byte float is float64, whatever its byte order (as in the reference).
bool is_float64(const py::array& a) {
  return a.dtype().kind() == 'f' && a.dtype().itemsize() == 8;
}

void require_real(const py::array& a, const std::string& name) {
  if (!is_real_numeric(a)) {
    throw py::type_error(name + " must be a real numeric array; got dtype " + dtype_str(a));
  }
}

void require_ndim(const py::array& a, const std::string& name, int ndim,
                  const std::string& layout) {
  if (a.ndim() != ndim) {
    throw py::value_error(name + " must be a " + std::to_string(ndim) + "-D array " + layout +
                          "; got shape " + shape_str(shape_of(a)));
  }
}

void require_shape(const py::array& a, const std::string& name,
                   const std::vector<wide_t>& expected) {
  if (shape_of(a) != expected) {
    throw py::value_error(name + " must have shape " + shape_str(expected) + "; got " +
                          shape_str(shape_of(a)));
  }
}

// An optional argument: None stays absent.
struct OptionalArray {
  bool given = false;
  py::array arr;
  OptionalArray() = default;
  OptionalArray(const py::object& obj, const char* name) : given(!obj.is_none()) {
    if (given) arr = as_array(obj, name);
  }
};

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

// The kernels' precondition (cells.hpp): C-contiguous, element-aligned, dtype T. Returns `a`
// itself (or, for an ndarray subclass, a base-class view of it) when it already is such an
// array, else a new copy. Never a null array.
py::array to_kernel_array(const py::array& a, const char* name, const py::dtype& dt) {
  PyObject* r = py::detail::npy_api::get().PyArray_FromAny_(a.ptr(), dt.inc_ref().ptr(), 0, 0,
                                                           kKernelFlags, nullptr);
  if (!r) conversion_failed(a, name, dt);
  return py::reinterpret_steal<py::array>(r);
}
template <class T>
py::array to_kernel_array(const py::array& a, const char* name) {
  return to_kernel_array(a, name, py::dtype::of<T>());
}

template <class T>
const T* data_or_null(const OptionalArray& o, const char* name, py::array& holder) {
  if (!o.given) return nullptr;
  holder = to_kernel_array<T>(o.arr, name);
  return static_cast<const T*>(holder.data());
}

// A new C-contiguous array whose memory comes from the block pool (and returns to it when
// NumPy frees the array). The sizes were checked (check_sizes) so the byte count fits.
template <class T>
py::array_t<T> pooled_array(const std::vector<index_t>& shape) {
  std::size_t n = 1;
  for (index_t s : shape) n *= static_cast<std::size_t>(s);
  std::size_t capacity = 0;
  void* p = rnnkit::pool_acquire(n * sizeof(T), &capacity);  // throws std::bad_alloc
  struct Owner {
    void* p;
    std::size_t capacity;
  };
  std::unique_ptr<Owner> own(new Owner{p, capacity});
  py::capsule owner;
  try {
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
  return py::array_t<T>(std::vector<py::ssize_t>(shape.begin(), shape.end()), static_cast<T*>(p),
                        owner);
}

// True when `converted` is a copy the conversion made just now: a different object that
// owns its data. Otherwise it is the caller's array (or a view of it: subclasses, memmaps).
bool is_private(const py::array& converted, const py::array& original) {
  return converted.ptr() != original.ptr() &&
         (converted.flags() & py::detail::npy_api::NPY_ARRAY_OWNDATA_) != 0;
}

// `converted` itself when it is private, else a copy of it in pooled memory.
template <class T>
py::array private_copy(const py::array& converted, const py::array& original) {
  if (is_private(converted, original)) return converted;
  // A fresh array and a memcpy: going through a buffer_info would parse its PEP 3118 format
  // string in Python, ~10 us per call.
  py::array_t<T> copy = pooled_array<T>(
      std::vector<index_t>(converted.shape(), converted.shape() + converted.ndim()));
  std::memcpy(copy.mutable_data(), converted.data(), static_cast<size_t>(converted.nbytes()));
  return copy;
}

// ---------------------------------------------------------------- the forward cache

// What a training forward returns as `cache`: the validated inputs (converted to the
// result dtype, private copies) and the arrays BPTT reads. Opaque to Python except for a few
// read-only facts.
struct ForwardCache {
  Cell cell = Cell::SimpleRNN;
  Dims dims;
  SeqOptions opt;
  bool f64 = false;
  bool has_bias = false;
  bool has_mask = false;
  // (A default-constructed py::array is an empty array, not a null handle: use the flags.)
  py::array x, kernel, recurrent_kernel, mask;  // mask: uint8 (B, T) when has_mask
  py::array gates, h_prev, c_prev, aux;
};

// One Python class per cell so backward can tell them apart and error messages name them.
struct SimpleRNNCache : ForwardCache {};
struct LSTMCache : ForwardCache {};
struct GRUCache : ForwardCache {};

// The C++ cache behind `obj`, an instance of a cache class; nullptr when no forward call
// made it (an instance from __new__ or copy.copy has no constructed C++ object: pybind11
// would hand out uninitialised memory).
const ForwardCache* initialised_cache(const py::handle& obj) {
  auto* inst = reinterpret_cast<py::detail::instance*>(obj.ptr());
  const py::detail::value_and_holder v_h = inst->get_value_and_holder(nullptr, false);
  if (!v_h || !v_h.holder_constructed() || v_h.value_ptr() == nullptr) return nullptr;
  return &obj.cast<const ForwardCache&>();
}

std::string uninitialised_message(const py::handle& obj, const char* cell) {
  return std::string("cache must be the cache returned by ") + cell +
         "_forward(..., training=True); got an uninitialised " + type_name(obj);
}

// For the read-only properties: any cache class, but initialised.
const ForwardCache& cache_property_self(const py::handle& self) {
  if (!py::isinstance<ForwardCache>(self)) {  // e.g. ForwardCache.shape.fget(42)
    throw py::type_error("expected an rnnkit cache; got " + type_name(self));
  }
  const ForwardCache* c = initialised_cache(self);
  if (!c) {
    throw py::type_error("uninitialised " + type_name(self) +
                         ": a cache must come from an rnnkit.ops *_forward(..., training=True)");
  }
  return *c;
}

// ---------------------------------------------------------------- forward

struct ForwardArgs {
  Cell cell;
  SeqOptions opt;
  py::array x, kernel, recurrent_kernel;
  OptionalArray bias, h0, c0, mask;
  Dims dims;
  bool f64 = false;
};

std::string gates_label(Cell cell) { return std::to_string(rnnkit::gate_count(cell)) + "*units"; }

// Elements of every array a call may hold at once (outputs, workspace, cache, gradients,
// converted weights), in exact arithmetic; 8 bytes each must fit in an int64. The reference
// applies the same rule with the same message.
void check_sizes(index_t B, index_t T, index_t I, index_t H, int G) {
  const double approx = static_cast<double>(B) * T * (G * static_cast<double>(H) + I + 4.0 * H) *
                            2.0 + (static_cast<double>(I) + H) * G * static_cast<double>(H);
  bool too_large = approx * 8.0 > 1.8e19;  // far beyond 2**63: also keeps the exact sum in range
  if (!too_large) {
    const wide_t gh = static_cast<wide_t>(G) * H;
    const wide_t elements = static_cast<wide_t>(B) * T * (gh + I + 4 * static_cast<wide_t>(H)) *
                                2 + (static_cast<wide_t>(I) + H) * gh;
    too_large = elements * 8 > static_cast<wide_t>(std::numeric_limits<index_t>::max());
  }
  if (too_large) {
    throw py::value_error("x and recurrent_kernel are too large: batch=" + int_str(B) +
                          ", time=" + int_str(T) + ", features=" + int_str(I) + ", units=" +
                          int_str(H) + " overflow 64-bit sizes");
  }
}

// Checks in the documented order: dtypes, ndims, emptiness, shapes, sizes.
void validate_forward(ForwardArgs& a) {
  const int G = rnnkit::gate_count(a.cell);
  const bool two_row_bias = a.cell == Cell::GRU && a.opt.reset_after;

  require_real(a.x, "x");
  require_real(a.kernel, "kernel");
  require_real(a.recurrent_kernel, "recurrent_kernel");
  if (a.bias.given) require_real(a.bias.arr, "bias");
  if (a.h0.given) require_real(a.h0.arr, "h0");
  if (a.c0.given) require_real(a.c0.arr, "c0");
  if (a.mask.given) {
    const char k = a.mask.arr.dtype().kind();
    if (!(k == 'b' || k == 'i' || k == 'u' || k == 'f')) {
      throw py::type_error("mask must be a boolean or numeric array; got dtype " +
                           dtype_str(a.mask.arr));
    }
  }

  const std::string gl = gates_label(a.cell);
  require_ndim(a.x, "x", 3, "(batch, time, features)");
  require_ndim(a.kernel, "kernel", 2, "(features, " + gl + ")");
  require_ndim(a.recurrent_kernel, "recurrent_kernel", 2, "(units, " + gl + ")");
  if (a.bias.given) {
    if (two_row_bias) {
      require_ndim(a.bias.arr, "bias", 2, "(2, 3*units)");
    } else {
      require_ndim(a.bias.arr, "bias", 1, "(" + gl + ",)");
    }
  }
  if (a.h0.given) require_ndim(a.h0.arr, "h0", 2, "(batch, units)");
  if (a.c0.given) require_ndim(a.c0.arr, "c0", 2, "(batch, units)");
  if (a.mask.given) require_ndim(a.mask.arr, "mask", 2, "(batch, time)");

  const index_t B = a.x.shape(0), T = a.x.shape(1), I = a.x.shape(2);
  if (B == 0 || T == 0 || I == 0) {
    throw py::value_error("x must have nonzero batch, time and feature sizes; got shape " +
                          shape_str(shape_of(a.x)));
  }
  const index_t H = a.recurrent_kernel.shape(0);
  if (H == 0) {
    throw py::value_error("recurrent_kernel must have at least one unit; got shape " +
                          shape_str(shape_of(a.recurrent_kernel)));
  }

  const wide_t GH = static_cast<wide_t>(G) * H;  // may exceed int64 before the shapes agree
  require_shape(a.recurrent_kernel, "recurrent_kernel", {H, GH});
  require_shape(a.kernel, "kernel", {I, GH});
  if (a.bias.given) {
    if (two_row_bias) {
      require_shape(a.bias.arr, "bias", {2, GH});
    } else {
      require_shape(a.bias.arr, "bias", {GH});
    }
  }
  if (a.h0.given) require_shape(a.h0.arr, "h0", {B, H});
  if (a.c0.given) require_shape(a.c0.arr, "c0", {B, H});
  if (a.mask.given) require_shape(a.mask.arr, "mask", {B, T});

  check_sizes(B, T, I, H, G);

  a.dims = Dims{B, T, I, H, G};
  a.f64 = is_float64(a.x) || is_float64(a.kernel) || is_float64(a.recurrent_kernel) ||
          (a.bias.given && is_float64(a.bias.arr)) || (a.h0.given && is_float64(a.h0.arr)) ||
          (a.c0.given && is_float64(a.c0.arr));
}

// The mask as a private (B, T) uint8 array, nonzero = keep: astype(bool) semantics (nonzero
// and NaN keep the step), copied so that editing the caller's mask changes nothing.
py::array private_mask(const OptionalArray& m, const Dims& d) {
  py::array as_bool = to_kernel_array(m.arr, "mask", py::dtype::of<bool>());
  py::array_t<std::uint8_t> out = pooled_array<std::uint8_t>({d.B, d.T});
  std::memcpy(out.mutable_data(), as_bool.data(), static_cast<size_t>(d.B * d.T));
  return out;
}

template <class T>
py::tuple run_forward(ForwardArgs& a, bool training) {
  const Dims& d = a.dims;
  py::array x = to_kernel_array<T>(a.x, "x");
  py::array kernel = to_kernel_array<T>(a.kernel, "kernel");
  py::array rk = to_kernel_array<T>(a.recurrent_kernel, "recurrent_kernel");
  py::array bias_h, h0_h, c0_h, mask;

  rnnkit::SeqInputs<T> in;
  in.x = static_cast<const T*>(x.data());
  in.kernel = static_cast<const T*>(kernel.data());
  in.recurrent_kernel = static_cast<const T*>(rk.data());
  in.bias = data_or_null<T>(a.bias, "bias", bias_h);
  in.h0 = data_or_null<T>(a.h0, "h0", h0_h);
  in.c0 = data_or_null<T>(a.c0, "c0", c0_h);
  if (a.mask.given) {
    mask = private_mask(a.mask, d);
    in.mask = static_cast<const std::uint8_t*>(mask.data());
  }

  py::array_t<T> y = pooled_array<T>({d.B, d.T, d.H});
  py::array_t<T> h_last({d.B, d.H});
  py::array_t<T> c_last;
  if (a.cell == Cell::LSTM) c_last = py::array_t<T>({d.B, d.H});

  std::unique_ptr<ForwardCache> cache;
  rnnkit::TrainCache<T> tc;
  if (training) {
    switch (a.cell) {
      case Cell::SimpleRNN: cache.reset(new SimpleRNNCache()); break;
      case Cell::LSTM: cache.reset(new LSTMCache()); break;
      default: cache.reset(new GRUCache()); break;
    }
    cache->cell = a.cell;
    cache->dims = d;
    cache->opt = a.opt;
    cache->f64 = std::is_same<T, double>::value;
    cache->has_bias = a.bias.given;
    // Private copies: editing the caller's arrays between forward and backward must not
    // change the gradients. The conversion hands back the caller's own memory when no copy
    // was needed, also as a new (view) object for subclasses: ownership decides, not identity.
    cache->x = private_copy<T>(x, a.x);
    cache->kernel = private_copy<T>(kernel, a.kernel);
    cache->recurrent_kernel = private_copy<T>(rk, a.recurrent_kernel);
    cache->has_mask = a.mask.given;
    if (a.mask.given) cache->mask = mask;  // already private
    const index_t rows = d.rows();
    cache->gates = pooled_array<T>({rows, d.GH()});
    cache->h_prev = pooled_array<T>({rows, d.H});
    tc.gates = static_cast<T*>(cache->gates.mutable_data());
    tc.h_prev = static_cast<T*>(cache->h_prev.mutable_data());
    if (rnnkit::cache_has_c_prev(a.cell)) {
      cache->c_prev = pooled_array<T>({rows, d.H});
      tc.c_prev = static_cast<T*>(cache->c_prev.mutable_data());
    }
    if (rnnkit::cache_has_aux(a.cell)) {
      cache->aux = pooled_array<T>({rows, d.H});
      tc.aux = static_cast<T*>(cache->aux.mutable_data());
    }
  }

  T* y_p = y.mutable_data();
  T* h_p = h_last.mutable_data();
  T* c_p = a.cell == Cell::LSTM ? c_last.mutable_data() : nullptr;
  const rnnkit::TrainCache<T>* tcp = training ? &tc : nullptr;
  const Cell cell = a.cell;
  const SeqOptions opt = a.opt;
  run_without_gil([&] {
    rnnkit::PooledBuffer<T> work(static_cast<size_t>(rnnkit::forward_workspace_size(cell, d, opt)));
    const rnnkit::CellKernels<T>& k = rnnkit::kernels_for<T>(rnnkit::active_kernels());
    switch (cell) {
      case Cell::SimpleRNN: k.simple_rnn_forward(y_p, h_p, d, opt, in, tcp, work.data()); break;
      case Cell::LSTM: k.lstm_forward(y_p, h_p, c_p, d, opt, in, tcp, work.data()); break;
      default: k.gru_forward(y_p, h_p, d, opt, in, tcp, work.data()); break;
    }
  });

  py::object cache_obj = py::none();
  if (training) {
    switch (a.cell) {
      case Cell::SimpleRNN:
        cache_obj = py::cast(std::unique_ptr<SimpleRNNCache>(static_cast<SimpleRNNCache*>(cache.release())));
        break;
      case Cell::LSTM:
        cache_obj = py::cast(std::unique_ptr<LSTMCache>(static_cast<LSTMCache*>(cache.release())));
        break;
      default:
        cache_obj = py::cast(std::unique_ptr<GRUCache>(static_cast<GRUCache*>(cache.release())));
        break;
    }
  }
  if (a.cell == Cell::LSTM) return py::make_tuple(y, h_last, c_last, cache_obj);
  return py::make_tuple(y, h_last, cache_obj);
}

// Turns an allocation failure into a MemoryError that says what was being allocated.
[[noreturn]] void out_of_memory(const char* fn, const Dims& d, bool f64, double elements) {
  std::ostringstream os;
  os << std::fixed;
  os.precision(1);
  os << fn << ": not enough memory for batch=" << d.B << ", time=" << d.T
     << ", features=" << d.I << ", units=" << d.H << " (needs about "
     << elements * (f64 ? 8.0 : 4.0) / 1e9 << " GB)";
  PyErr_SetString(PyExc_MemoryError, os.str().c_str());
  throw py::error_already_set();
}

// Elements a call allocates: outputs, workspace and (training) the cache or gradients.
double forward_elements(const Dims& d, bool training) {
  const double rows = static_cast<double>(d.rows());
  return rows * d.H + rows * d.GH() + (training ? rows * (d.GH() + 3.0 * d.H + d.I) : 0.0);
}
double backward_elements(const Dims& d) {
  const double rows = static_cast<double>(d.rows());
  return 2.0 * rows * d.GH() + rows * d.I;
}

// Runs a validated forward call in its dtype.
py::tuple dispatch_forward(ForwardArgs& a, bool training) {
  try {
    return a.f64 ? run_forward<double>(a, training) : run_forward<float>(a, training);
  } catch (const std::bad_alloc&) {
    out_of_memory((std::string(cell_name(a.cell)) + "_forward").c_str(), a.dims, a.f64,
                  forward_elements(a.dims, training));
  }
}

// `activation` / `recurrent_activation` (name: the argument, for the message). None is
// linear; names are exact (case matters).
Activation parse_activation(const py::object& act, const char* name = "activation") {
  static const std::pair<const char*, Activation> known[] = {
      {"tanh", Activation::Tanh}, {"sigmoid", Activation::Sigmoid},
      {"hard_sigmoid", Activation::HardSigmoid},
      {"hard_sigmoid_keras2", Activation::HardSigmoidKeras2}, {"relu", Activation::ReLU},
      {"relu6", Activation::ReLU6}, {"elu", Activation::ELU}, {"selu", Activation::SELU},
      {"softsign", Activation::Softsign}, {"softplus", Activation::Softplus},
      {"linear", Activation::Linear}, {"silu", Activation::SiLU}, {"gelu", Activation::GELU}};
  if (act.is_none()) return Activation::Linear;
  if (py::isinstance<py::str>(act)) {
    const std::string s = act.cast<std::string>();
    for (const auto& k : known) {
      if (s == k.first) return k.second;
    }
  }
  std::string names;
  for (const auto& k : known) names += std::string(names.empty() ? "'" : ", '") + k.first + "'";
  throw py::value_error(std::string(name) + " must be one of " + names + " or None; got " +
                        py::repr(act).cast<std::string>());
}

// ---------------------------------------------------------------- backward

const ForwardCache& require_cache(const py::object& obj, Cell cell) {
  bool ok = false;
  switch (cell) {
    case Cell::SimpleRNN: ok = py::isinstance<SimpleRNNCache>(obj); break;
    case Cell::LSTM: ok = py::isinstance<LSTMCache>(obj); break;
    default: ok = py::isinstance<GRUCache>(obj); break;
  }
  if (!ok) {
    throw py::type_error(std::string("cache must be the cache returned by ") + cell_name(cell) +
                         "_forward(..., training=True); got " + type_name(obj));
  }
  const ForwardCache* c = initialised_cache(obj);
  if (!c) throw py::type_error(uninitialised_message(obj, cell_name(cell)));
  return *c;
}

// An upstream gradient: None, or a real array. Its shape is checked after every dtype.
OptionalArray upstream(const py::object& obj, const char* name) {
  OptionalArray o(obj, name);
  if (o.given) require_real(o.arr, name);
  return o;
}

void require_upstream_shape(const OptionalArray& o, const char* name,
                            const std::vector<wide_t>& shape) {
  if (o.given) require_shape(o.arr, name, shape);
}

template <class T>
py::dict run_backward(const ForwardCache& c, const OptionalArray& dy, const OptionalArray& dh,
                      const OptionalArray& dc) {
  const Dims& d = c.dims;
  py::array dy_h, dh_h, dc_h;
  rnnkit::SeqUpstream<T> up;
  up.dy = data_or_null<T>(dy, "dy", dy_h);
  up.dh_last = data_or_null<T>(dh, "dh_last", dh_h);
  up.dc_last = data_or_null<T>(dc, "dc_last", dc_h);

  rnnkit::SeqInputs<T> in;
  in.x = static_cast<const T*>(c.x.data());
  in.kernel = static_cast<const T*>(c.kernel.data());
  in.recurrent_kernel = static_cast<const T*>(c.recurrent_kernel.data());
  in.mask = c.has_mask ? static_cast<const std::uint8_t*>(c.mask.data()) : nullptr;
  rnnkit::TrainCache<T> tc;
  tc.gates = static_cast<T*>(const_cast<void*>(c.gates.data()));
  tc.h_prev = static_cast<T*>(const_cast<void*>(c.h_prev.data()));
  if (rnnkit::cache_has_c_prev(c.cell)) tc.c_prev = static_cast<T*>(const_cast<void*>(c.c_prev.data()));
  if (rnnkit::cache_has_aux(c.cell)) tc.aux = static_cast<T*>(const_cast<void*>(c.aux.data()));

  py::array_t<T> dx = pooled_array<T>({d.B, d.T, d.I});
  py::array_t<T> dkernel({d.I, d.GH()});
  py::array_t<T> drec({d.H, d.GH()});
  py::array_t<T> dh0({d.B, d.H});
  py::array_t<T> dbias, dc0;
  rnnkit::SeqGrads<T> g;
  g.dx = dx.mutable_data();
  g.dkernel = dkernel.mutable_data();
  g.drecurrent = drec.mutable_data();
  g.dh0 = dh0.mutable_data();
  if (c.has_bias) {
    if (c.cell == Cell::GRU && c.opt.reset_after) {
      dbias = py::array_t<T>({index_t(2), d.GH()});
    } else {
      dbias = py::array_t<T>({d.GH()});
    }
    g.dbias = dbias.mutable_data();
  }
  if (c.cell == Cell::LSTM) {
    dc0 = py::array_t<T>({d.B, d.H});
    g.dc0 = dc0.mutable_data();
  }
  const Cell cell = c.cell;
  const SeqOptions opt = c.opt;
  run_without_gil([&] {
    rnnkit::PooledBuffer<T> work(static_cast<size_t>(rnnkit::backward_workspace_size(cell, d, opt)));
    const rnnkit::CellKernels<T>& k = rnnkit::kernels_for<T>(rnnkit::active_kernels());
    switch (cell) {
      case Cell::SimpleRNN: k.simple_rnn_backward(g, d, opt, in, tc, up, work.data()); break;
      case Cell::LSTM: k.lstm_backward(g, d, opt, in, tc, up, work.data()); break;
      default: k.gru_backward(g, d, opt, in, tc, up, work.data()); break;
    }
  });
  py::dict grads;
  grads["x"] = dx;
  grads["kernel"] = dkernel;
  grads["recurrent_kernel"] = drec;
  if (c.has_bias) grads["bias"] = dbias;
  grads["h0"] = dh0;
  if (c.cell == Cell::LSTM) grads["c0"] = dc0;
  return grads;
}

py::dict backward(const py::object& cache_obj, Cell cell, const py::object& dy,
                  const py::object& dh_last, const py::object& dc_last) {
  const ForwardCache& c = require_cache(cache_obj, cell);
  const Dims& d = c.dims;
  const bool lstm = cell == Cell::LSTM;
  const OptionalArray dy_a = upstream(dy, "dy");
  const OptionalArray dh_a = upstream(dh_last, "dh_last");
  const OptionalArray dc_a = lstm ? upstream(dc_last, "dc_last") : OptionalArray();
  require_upstream_shape(dy_a, "dy", {d.B, d.T, d.H});
  require_upstream_shape(dh_a, "dh_last", {d.B, d.H});
  require_upstream_shape(dc_a, "dc_last", {d.B, d.H});
  try {
    return c.f64 ? run_backward<double>(c, dy_a, dh_a, dc_a)
               : run_backward<float>(c, dy_a, dh_a, dc_a);
  } catch (const std::bad_alloc&) {
    out_of_memory((std::string(cell_name(cell)) + "_backward").c_str(), d, c.f64,
                  backward_elements(d));
  }
}

// The flags first (go_backwards, reset_after, training), then every array argument is
// converted to a NumPy array (in signature order), then validate_forward checks them.
ForwardArgs make_args(Cell cell, const py::object& x, const py::object& kernel,
                      const py::object& rk, const py::object& bias, const py::object& h0,
                      const py::object& c0, const py::object& mask,
                      const py::object& go_backwards, const py::object& reset_after,
                      const py::object& training, bool* train) {
  SeqOptions opt;
  opt.go_backwards = require_bool(go_backwards, "go_backwards");
  if (cell == Cell::GRU) opt.reset_after = require_bool(reset_after, "reset_after");
  *train = require_bool(training, "training");
  ForwardArgs a{cell, opt, as_array(x, "x"), as_array(kernel, "kernel"),
                as_array(rk, "recurrent_kernel"), OptionalArray(bias, "bias"),
                OptionalArray(h0, "h0"), OptionalArray(c0, "c0"), OptionalArray(mask, "mask"),
                Dims{}, false};
  return a;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnnkit C++ kernels (use rnnkit.ops, which documents the arguments).";

  // Choose the ISA now, so a bad RNNKIT_ISA fails at import with a clear message.
  try {
    rnnkit::active_kernels();
  } catch (const std::invalid_argument& e) {
    throw py::value_error(std::string("RNNKIT_ISA: ") + e.what());
  }
  m.def("build_info", [] {
    py::dict info;
    info["isa"] = rnnkit::active_kernels().isa;
    info["compiled_isas"] = rnnkit::compiled_isas();
    info["supported_isas"] = rnnkit::supported_isas();
    info["num_threads"] = rnnkit::get_num_threads();
    info["compiler"] = RNNKIT_COMPILER;
    return info;
  });
  m.def("select_isa", [](const std::string& name) {
    try {
      rnnkit::select_isa(name);
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  }, py::arg("name"));
  m.def("set_num_threads", [](int n) { rnnkit::set_num_threads(n); }, py::arg("n"));
  m.def("get_num_threads", [] { return rnnkit::get_num_threads(); });
  m.def("max_threads", [] { return rnnkit::max_threads(); });
  m.def("pool_trim", [] { return rnnkit::pool_trim(); });
  m.def("set_pool_limit", [](std::size_t n) { rnnkit::set_pool_limit(n); }, py::arg("bytes"));
  m.def("get_pool_limit", [] { return rnnkit::pool_limit(); });
  m.def("pool_stats", [] {
    const rnnkit::PoolStats s = rnnkit::pool_stats();
    return py::make_tuple(s.cached_bytes, s.cached_blocks);
  });
  rnnkit_install_interrupt_hook();

  // The properties take the instance as a handle and check it was initialised by a forward
  // call (a `const ForwardCache&` argument would make pybind11 allocate uninitialised memory
  // for an instance made with __new__).
  py::class_<ForwardCache>(m, "ForwardCache")
      .def_property_readonly("dtype", [](py::handle self) {
        return cache_property_self(self).f64 ? py::dtype::of<double>() : py::dtype::of<float>();
      })
      .def_property_readonly("shape", [](py::handle self) {
        const ForwardCache& c = cache_property_self(self);
        return py::make_tuple(c.dims.B, c.dims.T, c.dims.H);
      }, "(batch, time, units) of the forward call, as the reference caches report it.")
      .def_property_readonly("go_backwards", [](py::handle self) {
        return cache_property_self(self).opt.go_backwards;
      })
      .def_property_readonly("nbytes", [](py::handle self) {
        const ForwardCache& c = cache_property_self(self);
        auto n = [](const py::array& a) { return static_cast<index_t>(a.nbytes()); };
        return n(c.gates) + n(c.h_prev) + n(c.c_prev) + n(c.aux);
      }, "Bytes of workspace kept for backward.");
  // Final: no Python subclass can make instances that look like caches.
  py::class_<SimpleRNNCache, ForwardCache>(m, "SimpleRNNCache", py::is_final());
  py::class_<LSTMCache, ForwardCache>(m, "LSTMCache", py::is_final());
  py::class_<GRUCache, ForwardCache>(m, "GRUCache", py::is_final());

  // Flags are taken as objects and checked by require_bool: pybind11's bool conversion
  // would accept 1 or numpy scalars of any kind, and a string only with a generic message.
  m.def("simple_rnn_forward",
        [](py::object x, py::object kernel, py::object rk, py::object bias, py::object h0,
           py::object activation, py::object mask, py::object go_backwards,
           py::object training) {
          bool train = true;
          ForwardArgs a = make_args(Cell::SimpleRNN, x, kernel, rk, bias, h0, py::none(), mask,
                                    go_backwards, py::none(), training, &train);
          validate_forward(a);  // activation is checked after the arrays, as in the reference
          a.opt.activation = parse_activation(activation);
          return dispatch_forward(a, train);
        },
        py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias") = py::none(),
        py::kw_only(), py::arg("h0") = py::none(), py::arg("activation") = "tanh",
        py::arg("mask") = py::none(), py::arg("go_backwards") = false,
        py::arg("training") = true);
  m.def("simple_rnn_backward",
        [](py::object cache, py::object dy, py::object dh_last) {
          return backward(cache, Cell::SimpleRNN, dy, dh_last, py::none());
        },
        py::arg("cache"), py::arg("dy") = py::none(), py::arg("dh_last") = py::none());

  m.def("lstm_forward",
        [](py::object x, py::object kernel, py::object rk, py::object bias, py::object h0,
           py::object c0, py::object mask, py::object go_backwards, py::object training,
           py::object activation, py::object recurrent_activation) {
          bool train = true;
          ForwardArgs a = make_args(Cell::LSTM, x, kernel, rk, bias, h0, c0, mask, go_backwards,
                                    py::none(), training, &train);
          validate_forward(a);
          a.opt.activation = parse_activation(activation);
          a.opt.recurrent_activation = parse_activation(recurrent_activation, "recurrent_activation");
          return dispatch_forward(a, train);
        },
        py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias") = py::none(),
        py::kw_only(), py::arg("h0") = py::none(), py::arg("c0") = py::none(),
        py::arg("mask") = py::none(), py::arg("go_backwards") = false,
        py::arg("training") = true, py::arg("activation") = "tanh",
        py::arg("recurrent_activation") = "sigmoid");
  m.def("lstm_backward",
        [](py::object cache, py::object dy, py::object dh_last, py::object dc_last) {
          return backward(cache, Cell::LSTM, dy, dh_last, dc_last);
        },
        py::arg("cache"), py::arg("dy") = py::none(), py::arg("dh_last") = py::none(),
        py::arg("dc_last") = py::none());

  m.def("gru_forward",
        [](py::object x, py::object kernel, py::object rk, py::object bias, py::object h0,
           py::object reset_after, py::object mask, py::object go_backwards,
           py::object training, py::object activation, py::object recurrent_activation) {
          bool train = true;
          ForwardArgs a = make_args(Cell::GRU, x, kernel, rk, bias, h0, py::none(), mask,
                                    go_backwards, reset_after, training, &train);
          validate_forward(a);
          a.opt.activation = parse_activation(activation);
          a.opt.recurrent_activation = parse_activation(recurrent_activation, "recurrent_activation");
          return dispatch_forward(a, train);
        },
        py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias") = py::none(),
        py::kw_only(), py::arg("h0") = py::none(), py::arg("reset_after") = true,
        py::arg("mask") = py::none(), py::arg("go_backwards") = false,
        py::arg("training") = true, py::arg("activation") = "tanh",
        py::arg("recurrent_activation") = "sigmoid");
  m.def("gru_backward",
        [](py::object cache, py::object dy, py::object dh_last) {
          return backward(cache, Cell::GRU, dy, dh_last, py::none());
        },
        py::arg("cache"), py::arg("dy") = py::none(), py::arg("dh_last") = py::none());
}
