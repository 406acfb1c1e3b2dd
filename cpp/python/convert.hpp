// Shared helpers of the Python bindings: converting Python objects to the arrays the kernels
// accept, allocating outputs from the block pool, formatting shapes for messages, and
// releasing the GIL around a kernel call. No cell knowledge here (register_cells.cpp).
//
// Reliability rules (tests/test_hostile_inputs.py):
//   * every conversion and allocation is checked: a failure is a Python exception (a
//     MemoryError naming the argument and the bytes it needed), never a null dereference;
//   * sizes are checked in exact (128-bit) arithmetic before anything is allocated;
//   * the kernels only see C-contiguous, element-aligned arrays of their dtype (cells.hpp);
//   * the GIL is released in exactly one place, run_kernel.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <chrono>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "rnnkit/block_pool.hpp"
#include "rnnkit/dims.hpp"
#include "python/interrupt_hook.hpp"
#include "python/shutdown_guard.hpp"

namespace rnnkit_py {

namespace py = pybind11;
using rnnkit::index_t;

// Exact arithmetic for size checks and for shapes in messages (G*H may not fit in int64).
using wide_t = __int128;

std::string int_str(wide_t v);
// A shape as NumPy prints it: "(3, 4)", "(5,)".
std::string shape_str(const std::vector<wide_t>& shape);
std::vector<wide_t> shape_of(const py::array& a);
std::string dtype_str(const py::array& a);
// type(obj).__name__
std::string type_name(const py::handle& obj);

// np.asarray(obj) without a Python round trip when obj is already an ndarray. NumPy's own
// refusal (a ragged nested list, ...) is re-raised naming the argument, with the same type.
py::array as_array(const py::handle& obj, const char* name);

// A flag argument: exactly a Python bool or a NumPy bool (never a string or a number, whose
// truth value is not what the caller meant: bool("False") is True).
bool require_bool(const py::handle& obj, const char* name);

// int, uint or float; any 8-byte float is float64, whatever its byte order (as in the reference).
bool is_real_numeric(const py::array& a);
bool is_float64(const py::array& a);

// A py::array holding no object. (A default-constructed py::array is a new empty NumPy
// array, ~0.1 us each: per-call holders and absent arguments start as null_array().)
template <class A = py::array>
A null_array() {
  return py::reinterpret_steal<A>(py::handle());
}

// An optional argument: None stays absent.
struct OptionalArray {
  bool given = false;
  py::array arr = null_array();  // a null handle unless given
  OptionalArray() = default;
  OptionalArray(const py::handle& obj, const char* name) : given(!obj.is_none()) {
    if (given) arr = as_array(obj, name);
  }
};

// NumPy's descriptor of T, looked up once (PyArray_DescrFromType costs ~20 ns, and a call
// needs it for every argument and output). Never released: no Python object may be freed
// after the interpreter is gone.
template <class T>
const py::dtype& dtype_of() {
  static const py::dtype* dt = new py::dtype(py::dtype::of<T>());
  return *dt;
}

// The kernels' precondition (cells.hpp): C-contiguous, element-aligned, dtype `dt`. Returns `a`
// itself (or, for an ndarray subclass, a base-class view of it) when it already is such an
// array, else a new copy. (An exact ndarray of the very dtype object, the common case, is
// recognised without calling NumPy.) Never a null array; a copy that cannot be allocated raises a
// MemoryError naming `name` and the bytes needed.
py::array to_kernel_array(const py::array& a, const char* name, const py::dtype& dt);
template <class T>
py::array to_kernel_array(const py::array& a, const char* name) {
  return to_kernel_array(a, name, dtype_of<T>());
}

template <class T>
const T* data_or_null(const OptionalArray& o, const char* name, py::array& holder) {
  if (!o.given) return nullptr;
  holder = to_kernel_array<T>(o.arr, name);
  return static_cast<const T*>(holder.data());
}

// The capsule that returns a pool block when NumPy frees the array owning it.
py::capsule pool_capsule(void* p, std::size_t capacity);

// Outputs below this many bytes are plain NumPy arrays: the pool exists to keep the pages of
// large blocks (fresh pages cost a fault each), while a small pooled output would cost a
// capsule and its owner on top of the array, more than NumPy's own allocation of it.
constexpr std::size_t kPooledOutputMin = std::size_t(64) << 10;

// A new C-contiguous array for a kernel to write (up to 3-D). Large ones take their memory from
// the block pool (and return it when NumPy frees the array). The sizes were checked before,
// so the byte count fits. Made by NumPy's C API directly: py::array_t's constructor copies
// the shape and strides into heap vectors first.
template <class T>
py::array_t<T> output_array(std::initializer_list<index_t> shape) {
  Py_intptr_t dims[3];
  int ndim = 0;
  std::size_t n = 1;
  for (index_t s : shape) {
    dims[ndim++] = static_cast<Py_intptr_t>(s);
    n *= static_cast<std::size_t>(s);
  }
  const auto& api = py::detail::npy_api::get();
  void* data = nullptr;
  py::object owner;
  if (n * sizeof(T) >= kPooledOutputMin) {
    std::size_t capacity = 0;
    data = rnnkit::pool_acquire(n * sizeof(T), &capacity);  // throws std::bad_alloc
    owner = pool_capsule(data, capacity);  // releases the block itself if it throws
  }
  const int flags = data ? py::detail::npy_api::NPY_ARRAY_WRITEABLE_ : 0;
  auto out = py::reinterpret_steal<py::array_t<T>>(api.PyArray_NewFromDescr_(
      api.PyArray_Type_, dtype_of<T>().inc_ref().ptr(), ndim, dims, nullptr, data, flags,
      nullptr));
  if (!out) throw py::error_already_set();  // the capsule returns the block
  // Steals the reference: from here the array owns the capsule, which owns the block.
  if (data && api.PyArray_SetBaseObject_(out.ptr(), owner.release().ptr()) != 0) {
    throw py::error_already_set();
  }
  return out;
}

// One block of pool memory, owned (the storage of a training cache).
class PoolBlock {
 public:
  explicit PoolBlock(std::size_t bytes) : p_(rnnkit::pool_acquire(bytes, &capacity_)) {}
  ~PoolBlock() {
    if (p_) rnnkit::pool_release(p_, capacity_);
  }
  PoolBlock(const PoolBlock&) = delete;
  PoolBlock& operator=(const PoolBlock&) = delete;
  char* data() const { return static_cast<char*>(p_); }

 private:
  std::size_t capacity_ = 0;
  void* p_ = nullptr;
};

// Runs f (a kernel call: raw pointers only, no Python API), with the GIL released when
// `release_gil`. Callers keep it only for calls too short to matter to other Python threads
// (a few tens of microseconds), which then skip releasing and re-taking it and the shutdown
// handshake (~0.05 us of a ~1 us binding). Such calls run on one thread and never
// reach an interrupt poll (threadpool.hpp: polls start 20 ms into a call); one that did would
// still work, since the poll's PyGILState_Ensure nests on a thread that holds the GIL.
//
// The GIL is released and re-acquired by explicit calls in the normal flow, not by a
// destructor: when the interpreter exits while a daemon thread is in a kernel, CPython
// < 3.14 ends that thread inside PyEval_RestoreThread with pthread_exit, whose forced unwind
// (abi::__forced_unwind) must pass through here untouched -- a noexcept destructor on its
// way (pybind11's gil_scoped_release) calls std::terminate. Better still, a non-main thread
// that finishes its kernel once shutdown has begun never asks for the GIL back: it parks
// forever (as CPython 3.14 itself does), so no Python object is released without the GIL;
// the process exit ends it. shutdown_guard.hpp's atexit handshake closes the window between
// that check and PyEval_RestoreThread. (The main thread runs the shutdown and may call
// kernels from atexit handlers or finalizers: it always gets its GIL back.)
//
// With the GIL re-held, a Python error raised meanwhile (a signal handler's
// KeyboardInterrupt, set through an interrupt hook) becomes this call's exception.
template <class F>
void run_kernel(bool release_gil, F&& f) {
  if (!release_gil) {
    f();
    if (PyErr_Occurred()) throw py::error_already_set();
    return;
  }
  // A non-main thread whose kernel ends during shutdown parks instead of taking the GIL
  // back (shutdown_guard.hpp: CPython < 3.14 would pthread_exit it through these frames).
  PyThreadState* state = PyEval_SaveThread();
  try {
    f();
  } catch (...) {  // re-acquire, then rethrow whatever it was (never swallowed)
    const GilReturn token = rnnkit_gil_return_begin();
    if (token == kGilPark) rnnkit_park_forever();
    PyEval_RestoreThread(state);
    rnnkit_gil_return_done(token);
    throw;
  }
  const GilReturn token = rnnkit_gil_return_begin();
  if (token == kGilPark) rnnkit_park_forever();
  PyEval_RestoreThread(state);
  rnnkit_gil_return_done(token);
  if (PyErr_Occurred()) throw py::error_already_set();
}

// The two halves of the module (cpp/bindings.cpp calls them at import).
void register_runtime(py::module_& m);
void register_cells(py::module_& m);

}  // namespace rnnkit_py
