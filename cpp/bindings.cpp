// The only pybind11 file: validate arguments, allocate outputs and workspace, release the
// GIL, call the kernel. No math here. Error messages are part of the API (SPEC section 4)
// and are identical to rnnkit.reference's; tests/test_validation.py checks both.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
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

// ---------------------------------------------------------------- messages and checks

std::string shape_str(const std::vector<index_t>& shape) {
  std::ostringstream os;
  os << '(';
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) os << ", ";
    os << shape[i];
  }
  if (shape.size() == 1) os << ',';
  os << ')';
  return os.str();
}

std::vector<index_t> shape_of(const py::array& a) {
  return std::vector<index_t>(a.shape(), a.shape() + a.ndim());
}

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

const char* cell_name(Cell cell) {
  switch (cell) {
    case Cell::SimpleRNN: return "simple_rnn";
    case Cell::LSTM: return "lstm";
    default: return "gru";
  }
}

// np.asarray(obj) without a Python round trip when obj is already an ndarray.
py::array as_array(const py::handle& obj) {
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  return py::module_::import("numpy").attr("asarray")(obj);
}

bool is_real_numeric(const py::array& a) {
  const char k = a.dtype().kind();
  return k == 'i' || k == 'u' || k == 'f';
}

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
                   const std::vector<index_t>& expected) {
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
  explicit OptionalArray(const py::object& obj) : given(!obj.is_none()) {
    if (given) arr = as_array(obj);
  }
};

template <class T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// A new C-contiguous array whose memory comes from the block pool (and returns to it when
// NumPy frees the array).
template <class T>
py::array_t<T> pooled_array(const std::vector<index_t>& shape) {
  std::size_t n = 1;
  for (index_t s : shape) n *= static_cast<std::size_t>(s);
  std::size_t capacity = 0;
  void* p = rnnkit::pool_acquire(n * sizeof(T), &capacity);
  struct Owner {
    void* p;
    std::size_t capacity;
  };
  py::capsule owner(new Owner{p, capacity}, [](void* o) {
    Owner* own = static_cast<Owner*>(o);
    rnnkit::pool_release(own->p, own->capacity);
    delete own;
  });
  return py::array_t<T>(std::vector<py::ssize_t>(shape.begin(), shape.end()), static_cast<T*>(p),
                        owner);
}

// Contiguous copy (or view) in dtype T; the dtype was validated before.
template <class T>
CArray<T> to_contiguous(const py::array& a) {
  return CArray<T>::ensure(a);
}

// `converted` itself when it is already a private conversion of `original`, else a copy.
template <class T>
py::array private_copy(const CArray<T>& converted, const py::array& original) {
  if (converted.ptr() != original.ptr()) return converted;
  // A fresh array and a memcpy: going through a buffer_info would parse its PEP 3118 format
  // string in Python, ~10 us per call.
  py::array_t<T> copy = pooled_array<T>(
      std::vector<index_t>(converted.shape(), converted.shape() + converted.ndim()));
  std::memcpy(copy.mutable_data(), converted.data(), static_cast<size_t>(converted.nbytes()));
  return copy;
}

template <class T>
const T* data_or_null(const OptionalArray& o, CArray<T>& holder) {
  if (!o.given) return nullptr;
  holder = to_contiguous<T>(o.arr);
  return holder.data();
}

// ---------------------------------------------------------------- the forward cache

// What a training forward returns as `cache`: the validated inputs (converted to the
// result dtype) and the arrays BPTT reads. Opaque to Python except for a few read-only facts.
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

// Checks in the documented order: dtypes, ndims, emptiness, shapes.
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

  require_shape(a.recurrent_kernel, "recurrent_kernel", {H, G * H});
  require_shape(a.kernel, "kernel", {I, G * H});
  if (a.bias.given) {
    if (two_row_bias) {
      require_shape(a.bias.arr, "bias", {2, G * H});
    } else {
      require_shape(a.bias.arr, "bias", {G * H});
    }
  }
  if (a.h0.given) require_shape(a.h0.arr, "h0", {B, H});
  if (a.c0.given) require_shape(a.c0.arr, "c0", {B, H});
  if (a.mask.given) require_shape(a.mask.arr, "mask", {B, T});

  // Workspace is (B*T, G*H) elements, twice for GRU backward: refuse sizes that overflow.
  const double cells = static_cast<double>(B) * T * (G * H + I + 4 * H) * 2.0;
  if (cells > static_cast<double>(std::numeric_limits<index_t>::max() / 16)) {
    throw py::value_error("x and recurrent_kernel are too large: batch*time*units overflows");
  }

  a.dims = Dims{B, T, I, H, G};
  a.f64 = is_float64(a.x) || is_float64(a.kernel) || is_float64(a.recurrent_kernel) ||
          (a.bias.given && is_float64(a.bias.arr)) || (a.h0.given && is_float64(a.h0.arr)) ||
          (a.c0.given && is_float64(a.c0.arr));
}

template <class T>
py::tuple run_forward(ForwardArgs& a, bool training) {
  const Dims& d = a.dims;
  CArray<T> x = to_contiguous<T>(a.x);
  CArray<T> kernel = to_contiguous<T>(a.kernel);
  CArray<T> rk = to_contiguous<T>(a.recurrent_kernel);
  CArray<T> bias_h, h0_h, c0_h;
  py::array_t<std::uint8_t> mask;
  if (a.mask.given) {
    // astype(bool): nonzero (and NaN) keeps the step; then viewed as bytes for the kernels.
    auto as_bool = py::array_t<bool, py::array::c_style | py::array::forcecast>::ensure(
        a.mask.arr);
    mask = as_bool.attr("view")(py::dtype::of<std::uint8_t>());
  }

  rnnkit::SeqInputs<T> in;
  in.x = x.data();
  in.kernel = kernel.data();
  in.recurrent_kernel = rk.data();
  in.bias = data_or_null<T>(a.bias, bias_h);
  in.h0 = data_or_null<T>(a.h0, h0_h);
  in.c0 = data_or_null<T>(a.c0, c0_h);
  in.mask = a.mask.given ? mask.data() : nullptr;

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
    // change the gradients (ensure() returns the caller's own array when no cast was needed).
    cache->x = private_copy(x, a.x);
    cache->kernel = private_copy(kernel, a.kernel);
    cache->recurrent_kernel = private_copy(rk, a.recurrent_kernel);
    cache->has_mask = a.mask.given;
    if (a.mask.given) cache->mask = mask;
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
  {
    py::gil_scoped_release release;
    rnnkit::PooledBuffer<T> work(static_cast<size_t>(rnnkit::forward_workspace_size(a.cell, d, a.opt)));
    const rnnkit::CellKernels<T>& k = rnnkit::kernels_for<T>(rnnkit::active_kernels());
    switch (a.cell) {
      case Cell::SimpleRNN: k.simple_rnn_forward(y_p, h_p, d, a.opt, in, tcp, work.data()); break;
      case Cell::LSTM: k.lstm_forward(y_p, h_p, c_p, d, a.opt, in, tcp, work.data()); break;
      default: k.gru_forward(y_p, h_p, d, a.opt, in, tcp, work.data()); break;
    }
  }
  if (PyErr_Occurred()) throw py::error_already_set();  // interrupted (interrupt_hook.hpp)

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

py::tuple forward(ForwardArgs& a, bool training) {
  validate_forward(a);
  return dispatch_forward(a, training);
}

Activation parse_activation(const py::object& act) {
  if (act.is_none()) return Activation::Linear;
  if (py::isinstance<py::str>(act)) {
    const std::string s = act.cast<std::string>();
    if (s == "tanh") return Activation::Tanh;
    if (s == "relu") return Activation::ReLU;
    if (s == "linear") return Activation::Linear;
  }
  throw py::value_error("activation must be one of 'tanh', 'relu', 'linear' or None; got " +
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
    const std::string got =
        py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
    throw py::type_error(std::string("cache must be the cache returned by ") + cell_name(cell) +
                         "_forward(..., training=True); got " + got);
  }
  return obj.cast<const ForwardCache&>();
}

// An upstream gradient: None, or a real array. Its shape is checked after every dtype.
OptionalArray upstream(const py::object& obj, const char* name) {
  OptionalArray o(obj);
  if (o.given) require_real(o.arr, name);
  return o;
}

void require_upstream_shape(const OptionalArray& o, const char* name,
                            const std::vector<index_t>& shape) {
  if (o.given) require_shape(o.arr, name, shape);
}

template <class T>
py::dict run_backward(const ForwardCache& c, const OptionalArray& dy, const OptionalArray& dh,
                      const OptionalArray& dc) {
  const Dims& d = c.dims;
  CArray<T> dy_h, dh_h, dc_h;
  rnnkit::SeqUpstream<T> up;
  up.dy = data_or_null<T>(dy, dy_h);
  up.dh_last = data_or_null<T>(dh, dh_h);
  up.dc_last = data_or_null<T>(dc, dc_h);

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
  {
    py::gil_scoped_release release;
    rnnkit::PooledBuffer<T> work(static_cast<size_t>(rnnkit::backward_workspace_size(c.cell, d, c.opt)));
    const rnnkit::CellKernels<T>& k = rnnkit::kernels_for<T>(rnnkit::active_kernels());
    switch (c.cell) {
      case Cell::SimpleRNN: k.simple_rnn_backward(g, d, c.opt, in, tc, up, work.data()); break;
      case Cell::LSTM: k.lstm_backward(g, d, c.opt, in, tc, up, work.data()); break;
      default: k.gru_backward(g, d, c.opt, in, tc, up, work.data()); break;
    }
  }
  if (PyErr_Occurred()) throw py::error_already_set();  // interrupted (interrupt_hook.hpp)
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

ForwardArgs make_args(Cell cell, const py::object& x, const py::object& kernel,
                      const py::object& rk, const py::object& bias, const py::object& h0,
                      const py::object& c0, const py::object& mask) {
  ForwardArgs a{cell, SeqOptions{}, as_array(x), as_array(kernel), as_array(rk),
                OptionalArray(bias), OptionalArray(h0), OptionalArray(c0), OptionalArray(mask),
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

  py::class_<ForwardCache>(m, "ForwardCache")
      .def_property_readonly("dtype", [](const ForwardCache& c) {
        return c.f64 ? py::dtype::of<double>() : py::dtype::of<float>();
      })
      .def_property_readonly("shape", [](const ForwardCache& c) {
        return py::make_tuple(c.dims.B, c.dims.T, c.dims.H);
      }, "(batch, time, units) of the forward call, as the reference caches report it.")
      .def_property_readonly("go_backwards", [](const ForwardCache& c) { return c.opt.go_backwards; })
      .def_property_readonly("nbytes", [](const ForwardCache& c) {
        auto n = [](const py::array& a) { return static_cast<index_t>(a.nbytes()); };
        return n(c.gates) + n(c.h_prev) + n(c.c_prev) + n(c.aux);
      }, "Bytes of workspace kept for backward.");
  py::class_<SimpleRNNCache, ForwardCache>(m, "SimpleRNNCache");
  py::class_<LSTMCache, ForwardCache>(m, "LSTMCache");
  py::class_<GRUCache, ForwardCache>(m, "GRUCache");

  m.def("simple_rnn_forward",
        [](py::object x, py::object kernel, py::object rk, py::object bias, py::object h0,
           py::object activation, py::object mask, bool go_backwards, bool training) {
          ForwardArgs a = make_args(Cell::SimpleRNN, x, kernel, rk, bias, h0, py::none(), mask);
          a.opt.go_backwards = go_backwards;
          validate_forward(a);  // activation is checked after the arrays, as in the reference
          a.opt.activation = parse_activation(activation);
          return dispatch_forward(a, training);
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
           py::object c0, py::object mask, bool go_backwards, bool training) {
          ForwardArgs a = make_args(Cell::LSTM, x, kernel, rk, bias, h0, c0, mask);
          a.opt.go_backwards = go_backwards;
          return forward(a, training);
        },
        py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias") = py::none(),
        py::kw_only(), py::arg("h0") = py::none(), py::arg("c0") = py::none(),
        py::arg("mask") = py::none(), py::arg("go_backwards") = false,
        py::arg("training") = true);
  m.def("lstm_backward",
        [](py::object cache, py::object dy, py::object dh_last, py::object dc_last) {
          return backward(cache, Cell::LSTM, dy, dh_last, dc_last);
        },
        py::arg("cache"), py::arg("dy") = py::none(), py::arg("dh_last") = py::none(),
        py::arg("dc_last") = py::none());

  m.def("gru_forward",
        [](py::object x, py::object kernel, py::object rk, py::object bias, py::object h0,
           bool reset_after, py::object mask, bool go_backwards, bool training) {
          ForwardArgs a = make_args(Cell::GRU, x, kernel, rk, bias, h0, py::none(), mask);
          a.opt.go_backwards = go_backwards;
          a.opt.reset_after = reset_after;
          return forward(a, training);
        },
        py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias") = py::none(),
        py::kw_only(), py::arg("h0") = py::none(), py::arg("reset_after") = true,
        py::arg("mask") = py::none(), py::arg("go_backwards") = false,
        py::arg("training") = true);
  m.def("gru_backward",
        [](py::object cache, py::object dy, py::object dh_last) {
          return backward(cache, Cell::GRU, dy, dh_last, py::none());
        },
        py::arg("cache"), py::arg("dy") = py::none(), py::arg("dh_last") = py::none());
}
