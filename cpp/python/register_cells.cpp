// The cell half of rnnkit._core: one <name>_forward / <name>_backward pair per line of
// cells.def, the one cache type, and the argument checks, as tables. This file converts,
// checks, allocates, releases the GIL and calls the kernel table; no math, and no code that
// tests which cell it is: per-cell facts come from cell_info() (cell_list.hpp) and sizes from
// cells/workspace.cpp.
//
// Error messages are part of the API (docs/spec.md §4) and identical to rnnkit.reference's;
// tests/test_validation.py and tests/test_hostile_inputs.py check both modules agree.
// The cache owns every array backward reads: nothing in it aliases caller memory; a cache
// instance that no forward call produced (__new__, copy.copy) is rejected.
#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "python/convert.hpp"
#include "rnnkit/cells.hpp"
#include "rnnkit/dispatch.hpp"

namespace rnnkit_py {

using rnnkit::Activation;
using rnnkit::Cell;
using rnnkit::cell_info;
using rnnkit::CellInfo;
using rnnkit::Dims;
using rnnkit::SeqOptions;

namespace {

// ================================================================ argument rules

// Dimension symbols of an expected shape: a size once x and recurrent_kernel are known, a
// label ("batch", "3*units") in ndim messages. BiasRows is "2" for a two-row bias
// (rnnkit::bias_rows) and absent otherwise. S is the width of h: H ("units"), or P
// ("proj_size") for projected cells; P is the projection width.
enum class Sym : char { End, B, T, I, H, GH, BiasRows, S, P };

struct ArgRule {
  const char* name;
  bool optional;          // None = absent
  bool two_states_only;   // an argument only of cells with a cell state (c0, dc_last)
  bool bool_or_numeric;   // dtype rule: bool or numeric (the mask); else int/uint/float
  Sym dims[3];            // expected shape, up to the first Sym::End
  bool projected_only;    // an argument only of projected cells (projection_kernel)
};

// The forward arrays, in signature order: converted, then dtype-checked, then ndim-checked
// in this order. Any of them but the mask being float64 makes the call float64.
enum Arg : int { kX, kKernel, kRecurrentKernel, kProjection, kBias, kH0, kC0, kMask, kArgCount };
constexpr ArgRule kForwardRules[kArgCount] = {
    {"x", false, false, false, {Sym::B, Sym::T, Sym::I}, false},
    {"kernel", false, false, false, {Sym::I, Sym::GH}, false},
    {"recurrent_kernel", false, false, false, {Sym::S, Sym::GH}, false},
    {"projection_kernel", false, false, false, {Sym::H, Sym::P}, true},
    {"bias", true, false, false, {Sym::BiasRows, Sym::GH}, false},
    {"h0", true, false, false, {Sym::B, Sym::S}, false},
    {"c0", true, true, false, {Sym::B, Sym::H}, false},
    {"mask", true, false, true, {Sym::B, Sym::T}, false},
};
// Shapes are checked in this order (x gives B, T, I; recurrent_kernel gives S, the width of
// h; H is S, or projection_kernel's rows for projected cells).
constexpr Arg kShapeOrder[] = {kProjection, kRecurrentKernel, kKernel, kBias, kH0, kC0, kMask};

// The upstream gradients of backward, each optional: converted and dtype-checked one by
// one, then shape-checked.
enum Up : int { kDy, kDhLast, kDcLast, kUpCount };
constexpr ArgRule kUpstreamRules[kUpCount] = {
    {"dy", true, false, false, {Sym::B, Sym::T, Sym::S}, false},
    {"dh_last", true, false, false, {Sym::B, Sym::S}, false},
    {"dc_last", true, true, false, {Sym::B, Sym::H}, false},
};

bool applies(const ArgRule& r, const CellInfo& c) {
  return (!r.two_states_only || c.states == 2) && (!r.projected_only || c.projected);
}

struct Sizes {
  wide_t B = 0, T = 0, I = 0, H = 0, GH = 0;  // GH may exceed int64 before shapes agree
  wide_t S = 0, P = 0;                        // width of h; projection width (projected)
  int G = 1;
  int bias_rows = 1;
  bool projected = false;
};

bool present(Sym s, const Sizes& z) { return s != Sym::End && (s != Sym::BiasRows || z.bias_rows == 2); }

std::vector<wide_t> expected_shape(const ArgRule& r, const Sizes& z) {
  std::vector<wide_t> shape;
  for (Sym s : r.dims) {
    if (!present(s, z)) continue;
    switch (s) {
      case Sym::B: shape.push_back(z.B); break;
      case Sym::T: shape.push_back(z.T); break;
      case Sym::I: shape.push_back(z.I); break;
      case Sym::H: shape.push_back(z.H); break;
      case Sym::GH: shape.push_back(z.GH); break;
      case Sym::BiasRows: shape.push_back(2); break;
      case Sym::S: shape.push_back(z.S); break;
      case Sym::P: shape.push_back(z.P); break;
      case Sym::End: break;
    }
  }
  return shape;
}

// "(batch, time, features)", "(3*units,)", "(2, 3*units)".
std::string layout(const ArgRule& r, const Sizes& z, int* ndim) {
  std::string s = "(";
  *ndim = 0;
  for (Sym sym : r.dims) {
    if (!present(sym, z)) continue;
    if (*ndim) s += ", ";
    ++*ndim;
    switch (sym) {
      case Sym::B: s += "batch"; break;
      case Sym::T: s += "time"; break;
      case Sym::I: s += "features"; break;
      case Sym::H: s += "units"; break;
      case Sym::GH: s += std::to_string(z.G) + "*units"; break;
      case Sym::BiasRows: s += "2"; break;
      case Sym::S: s += z.projected ? "proj_size" : "units"; break;
      case Sym::P: s += "proj_size"; break;
      case Sym::End: break;
    }
  }
  return s + (*ndim == 1 ? ",)" : ")");
}

void check_dtype(const ArgRule& r, const py::array& a) {
  const char k = a.dtype().kind();
  if (r.bool_or_numeric) {
    if (!(k == 'b' || k == 'i' || k == 'u' || k == 'f')) {
      throw py::type_error(std::string(r.name) + " must be a boolean or numeric array; got dtype " +
                           dtype_str(a));
    }
  } else if (!is_real_numeric(a)) {
    throw py::type_error(std::string(r.name) + " must be a real numeric array; got dtype " +
                         dtype_str(a));
  }
}

void check_ndim(const ArgRule& r, const py::array& a, const Sizes& z) {
  int ndim = 0;
  for (Sym s : r.dims) ndim += present(s, z) ? 1 : 0;
  if (a.ndim() != ndim) {
    const std::string lay = layout(r, z, &ndim);
    throw py::value_error(std::string(r.name) + " must be a " + std::to_string(ndim) +
                          "-D array " + lay + "; got shape " + shape_str(shape_of(a)));
  }
}

void check_shape(const ArgRule& r, const py::array& a, const Sizes& z) {
  const std::vector<wide_t> expected = expected_shape(r, z);
  if (shape_of(a) != expected) {
    throw py::value_error(std::string(r.name) + " must have shape " + shape_str(expected) +
                          "; got " + shape_str(shape_of(a)));
  }
}

// Elements of every array a call may hold at once, 8 bytes each, must fit in an int64: the
// reference's rule (reference/_validate.py check_sizes), with its message, in exact
// arithmetic. (The sizes a call really allocates are cells/workspace.cpp's.)
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

// ================================================================ keyword options

// The keyword arguments of <name>_forward that set SeqOptions fields, one per kOpt* bit of
// cells.def. Flags are checked with go_backwards and training, before the arrays; the
// others after the arrays (the reference's order).
enum class OptionKind { Flag, Activation };
struct OptionSpec {
  unsigned bit;
  const char* name;
  OptionKind kind;
  bool flag_default;        // Flag
  const char* str_default;  // Activation
  bool SeqOptions::*flag;
  Activation SeqOptions::*activation;
};
constexpr OptionSpec kOptionSpecs[] = {
    {rnnkit::kOptActivation, "activation", OptionKind::Activation, false, "tanh", nullptr,
     &SeqOptions::activation},
    {rnnkit::kOptRecurrentActivation, "recurrent_activation", OptionKind::Activation, false,
     "sigmoid", nullptr, &SeqOptions::recurrent_activation},
    {rnnkit::kOptResetAfter, "reset_after", OptionKind::Flag, true, nullptr,
     &SeqOptions::reset_after, nullptr},
};
constexpr int kOptionCount = sizeof(kOptionSpecs) / sizeof(kOptionSpecs[0]);

constexpr bool every_option_has_a_spec() {
  unsigned known = 0;
  for (const OptionSpec& s : kOptionSpecs) known |= s.bit;
  for (const CellInfo& c : rnnkit::kCells) {
    if (c.options & ~known) return false;
  }
  return true;
}
static_assert(every_option_has_a_spec(),
              "cells.def names an option bit that has no OptionSpec in register_cells.cpp");

// `activation` / `recurrent_activation` (name: the argument, for the message). None is
// linear; names are exact (case matters) and listed in python/rnnkit/cells.py's order.
Activation parse_activation(const py::handle& act, const char* name) {
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

// The keyword arguments between h0 and mask: c0 (two states), then the cell's options in
// kOptionSpecs order.
constexpr int extra_count(Cell cell) {
  const CellInfo& c = cell_info(cell);
  int n = c.states - 1;
  for (const OptionSpec& s : kOptionSpecs) n += c.reads(s.bit) ? 1 : 0;
  return n;
}

py::arg_v extra_arg(Cell cell, int i) {
  const CellInfo& c = cell_info(cell);
  if (c.states == 2 && i-- == 0) return py::arg_v("c0", py::none());
  for (const OptionSpec& s : kOptionSpecs) {
    if (!c.reads(s.bit) || i-- != 0) continue;
    if (s.kind == OptionKind::Flag) return py::arg_v(s.name, py::bool_(s.flag_default));
    return py::arg_v(s.name, py::str(s.str_default));
  }
  throw std::logic_error("extra_arg: no such argument");
}

// ================================================================ the cache

// What a training forward returns as `cache`: the validated inputs (converted to the result
// dtype, private copies) and the TrainCache arrays BPTT reads. One Python type for every
// cell; messages name it after its cell ("LSTMCache", as the reference's classes are named).
struct ForwardCache {
  Cell cell = Cell{};
  Dims dims;
  SeqOptions opt;
  bool f64 = false;
  bool has_bias = false;
  bool has_mask = false;
  // Null handles until set: mask only when has_mask, train[k] only for the cell's arrays.
  py::array x = null_array(), kernel = null_array(), recurrent_kernel = null_array();
  py::array projection_kernel = null_array();  // projected cells only
  py::array mask = null_array();  // uint8 (B, T)
  py::array train[rnnkit::kCacheArrayCount] = {null_array(), null_array(), null_array(),
                                               null_array(), null_array()};  // by CacheArray
};

template <class T>
constexpr T* rnnkit::TrainCache<T>::*kTrainMembers[rnnkit::kCacheArrayCount] = {
    &rnnkit::TrainCache<T>::gates, &rnnkit::TrainCache<T>::h_prev,
    &rnnkit::TrainCache<T>::c_prev, &rnnkit::TrainCache<T>::aux, &rnnkit::TrainCache<T>::m};

// The C++ cache behind `obj`, a ForwardCache instance; nullptr when no forward call made it
// (an instance from __new__ or copy.copy has no constructed C++ object: pybind11 would hand
// out uninitialised memory).
const ForwardCache* initialised_cache(const py::handle& obj) {
  auto* inst = reinterpret_cast<py::detail::instance*>(obj.ptr());
  const py::detail::value_and_holder v_h = inst->get_value_and_holder(nullptr, false);
  if (!v_h || !v_h.holder_constructed() || v_h.value_ptr() == nullptr) return nullptr;
  return &obj.cast<const ForwardCache&>();
}

// For the read-only properties: a ForwardCache, initialised.
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

// The cache `cell`'s backward was given, or a TypeError worded as the reference's.
const ForwardCache& require_cache(const py::handle& obj, Cell cell) {
  const CellInfo& want = cell_info(cell);
  const std::string expected = std::string("cache must be the cache returned by ") + want.name +
                               "_forward(..., training=True); got ";
  if (!py::isinstance<ForwardCache>(obj)) throw py::type_error(expected + type_name(obj));
  const ForwardCache* c = initialised_cache(obj);
  if (!c) throw py::type_error(expected + "an uninitialised " + want.cache_name);
  if (c->cell != cell) throw py::type_error(expected + cell_info(c->cell).cache_name);
  return *c;
}

// Turns an allocation failure into a MemoryError that says what was being allocated.
[[noreturn]] void out_of_memory(Cell cell, const char* what, const Dims& d, bool f64,
                                index_t elements) {
  std::ostringstream os;
  os << std::fixed;
  os.precision(1);
  os << cell_info(cell).name << what << ": not enough memory for batch=" << d.B
     << ", time=" << d.T << ", features=" << d.I << ", units=" << d.H << " (needs about "
     << static_cast<double>(elements) * (f64 ? 8.0 : 4.0) / 1e9 << " GB)";
  PyErr_SetString(PyExc_MemoryError, os.str().c_str());
  throw py::error_already_set();
}

// ================================================================ forward

struct ForwardArgs {
  Cell cell;
  SeqOptions opt;
  bool training = true;
  OptionalArray arg[kArgCount];
  Dims dims;
  bool f64 = false;
};

// Checks in the reference's order: dtypes, ndims, emptiness, shapes, sizes.
void validate_forward(ForwardArgs& a) {
  const CellInfo& info = cell_info(a.cell);
  Sizes z;
  z.G = info.gates;
  z.bias_rows = rnnkit::bias_rows(a.cell, a.opt);
  z.projected = info.projected;
  for (int i = 0; i < kArgCount; ++i) {
    if (a.arg[i].given) check_dtype(kForwardRules[i], a.arg[i].arr);
  }
  for (int i = 0; i < kArgCount; ++i) {
    if (a.arg[i].given) check_ndim(kForwardRules[i], a.arg[i].arr, z);
  }

  const py::array& x = a.arg[kX].arr;
  const py::array& rk = a.arg[kRecurrentKernel].arr;
  const index_t B = x.shape(0), T = x.shape(1), I = x.shape(2);
  if (B == 0 || T == 0 || I == 0) {
    throw py::value_error("x must have nonzero batch, time and feature sizes; got shape " +
                          shape_str(shape_of(x)));
  }
  const index_t S = rk.shape(0);  // the width of h
  if (S == 0) {
    throw py::value_error("recurrent_kernel must have at least one unit; got shape " +
                          shape_str(shape_of(rk)));
  }
  index_t H = S, P = 0;
  if (info.projected) {
    const py::array& pk = a.arg[kProjection].arr;
    H = pk.shape(0), P = S;
    if (H == 0) {
      throw py::value_error("projection_kernel must have at least one unit; got shape " +
                            shape_str(shape_of(pk)));
    }
  }
  z.B = B, z.T = T, z.I = I, z.H = H, z.S = S, z.P = P;
  z.GH = static_cast<wide_t>(info.gates) * H;
  for (Arg i : kShapeOrder) {
    if (a.arg[i].given) check_shape(kForwardRules[i], a.arg[i].arr, z);
  }
  check_sizes(B, T, I, H > S ? H : S, info.gates);

  a.dims = Dims{B, T, I, H, info.gates, P};
  a.f64 = false;
  for (int i = 0; i < kArgCount; ++i) {
    if (i != kMask && a.arg[i].given && is_float64(a.arg[i].arr)) a.f64 = true;
  }
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
py::tuple run_forward(ForwardArgs& a) {
  const Dims& d = a.dims;
  const Cell cell = a.cell;
  const CellInfo& info = cell_info(cell);
  const OptionalArray* arg = a.arg;
  py::array x = to_kernel_array<T>(arg[kX].arr, "x");
  py::array kernel = to_kernel_array<T>(arg[kKernel].arr, "kernel");
  py::array rk = to_kernel_array<T>(arg[kRecurrentKernel].arr, "recurrent_kernel");
  py::array pk = info.projected
                     ? to_kernel_array<T>(arg[kProjection].arr, "projection_kernel")
                     : null_array();
  py::array bias_h = null_array(), h0_h = null_array(), c0_h = null_array();
  py::array mask = null_array();

  rnnkit::SeqInputs<T> in;
  in.x = static_cast<const T*>(x.data());
  in.kernel = static_cast<const T*>(kernel.data());
  in.recurrent_kernel = static_cast<const T*>(rk.data());
  if (info.projected) in.projection_kernel = static_cast<const T*>(pk.data());
  in.bias = data_or_null<T>(arg[kBias], "bias", bias_h);
  in.h0 = data_or_null<T>(arg[kH0], "h0", h0_h);
  in.c0 = data_or_null<T>(arg[kC0], "c0", c0_h);
  if (arg[kMask].given) {
    mask = private_mask(arg[kMask], d);
    in.mask = static_cast<const std::uint8_t*>(mask.data());
  }

  py::array_t<T> y = pooled_array<T>({d.B, d.T, d.S()});
  py::array_t<T> h_last({d.B, d.S()});
  py::array_t<T> c_last = null_array<py::array_t<T>>();
  rnnkit::SeqOutputs<T> out;
  out.y = y.mutable_data();
  out.h_last = h_last.mutable_data();
  if (info.states == 2) {
    c_last = py::array_t<T>({d.B, d.H});
    out.c_last = c_last.mutable_data();
  }

  std::unique_ptr<ForwardCache> cache;
  rnnkit::TrainCache<T> tc;
  if (a.training) {
    cache.reset(new ForwardCache());
    cache->cell = cell;
    cache->dims = d;
    cache->opt = a.opt;
    cache->f64 = std::is_same<T, double>::value;
    cache->has_bias = arg[kBias].given;
    // Private copies: editing the caller's arrays between forward and backward must not
    // change the gradients. The conversion hands back the caller's own memory when no copy
    // was needed, also as a new (view) object for subclasses: ownership decides, not identity.
    cache->x = private_copy<T>(x, arg[kX].arr);
    cache->kernel = private_copy<T>(kernel, arg[kKernel].arr);
    cache->recurrent_kernel = private_copy<T>(rk, arg[kRecurrentKernel].arr);
    if (info.projected) cache->projection_kernel = private_copy<T>(pk, arg[kProjection].arr);
    cache->has_mask = arg[kMask].given;
    if (cache->has_mask) cache->mask = mask;  // already private
    for (int k = 0; k < rnnkit::kCacheArrayCount; ++k) {
      const index_t cols = rnnkit::train_cache_columns(cell, k, d);
      if (cols == 0) continue;
      cache->train[k] = pooled_array<T>({d.rows(), cols});
      tc.*kTrainMembers<T>[k] = static_cast<T*>(cache->train[k].mutable_data());
    }
  }

  const rnnkit::TrainCache<T>* tcp = a.training ? &tc : nullptr;
  const SeqOptions opt = a.opt;
  run_without_gil([&] {
    rnnkit::PooledBuffer<T> work(
        static_cast<size_t>(rnnkit::forward_workspace_size(cell, d, opt)));
    rnnkit::kernels_for<T>(rnnkit::active_kernels()).forward_of(cell)(out, d, opt, in, tcp,
                                                                       work.data());
  });

  py::object cache_obj = cache ? py::cast(std::move(cache)) : py::none();
  if (info.states == 2) return py::make_tuple(y, h_last, c_last, cache_obj);
  return py::make_tuple(y, h_last, cache_obj);
}

// One forward call: flags (go_backwards, the cell's flag options, training), then every
// array converted in signature order, then the checks, then the other options, then the
// kernel in the result dtype. extras: the cell's keyword arguments between h0 and mask.
py::tuple forward(Cell cell, const py::handle* fixed, const py::handle* extras,
                  const py::handle& mask, const py::handle& go_backwards,
                  const py::handle& training) {
  const CellInfo& info = cell_info(cell);
  ForwardArgs a{cell, SeqOptions{}, true, {}, Dims{}, false};
  int e = 0;
  const py::handle c0 = info.states == 2 ? extras[e++] : py::handle(Py_None);
  py::handle option[kOptionCount];
  for (int s = 0; s < kOptionCount; ++s) {
    if (info.reads(kOptionSpecs[s].bit)) option[s] = extras[e++];
  }

  a.opt.go_backwards = require_bool(go_backwards, "go_backwards");
  for (int s = 0; s < kOptionCount; ++s) {
    const OptionSpec& spec = kOptionSpecs[s];
    if (option[s] && spec.kind == OptionKind::Flag) {
      a.opt.*spec.flag = require_bool(option[s], spec.name);
    }
  }
  a.training = require_bool(training, "training");

  // fixed: x, kernel, recurrent_kernel, projection_kernel (None unless projected), bias, h0.
  const py::handle objs[kArgCount] = {fixed[0], fixed[1], fixed[2], fixed[3], fixed[4],
                                      fixed[5], c0, mask};
  for (int i = 0; i < kArgCount; ++i) {
    if (!applies(kForwardRules[i], info)) continue;
    if (kForwardRules[i].optional) {
      a.arg[i] = OptionalArray(objs[i], kForwardRules[i].name);
    } else {
      a.arg[i].given = true;
      a.arg[i].arr = as_array(objs[i], kForwardRules[i].name);
    }
  }
  validate_forward(a);
  for (int s = 0; s < kOptionCount; ++s) {
    const OptionSpec& spec = kOptionSpecs[s];
    if (option[s] && spec.kind == OptionKind::Activation) {
      a.opt.*spec.activation = parse_activation(option[s], spec.name);
    }
  }

  try {
    return a.f64 ? run_forward<double>(a) : run_forward<float>(a);
  } catch (const std::bad_alloc&) {
    out_of_memory(cell, "_forward", a.dims, a.f64,
                  rnnkit::forward_call_elements(cell, a.dims, a.opt, a.training));
  }
}

// ================================================================ backward

template <class T>
py::dict run_backward(const ForwardCache& c, const OptionalArray* up_arr) {
  const Dims& d = c.dims;
  const Cell cell = c.cell;
  const CellInfo& info = cell_info(cell);
  py::array holder[kUpCount] = {null_array(), null_array(), null_array()};
  rnnkit::SeqUpstream<T> up;
  up.dy = data_or_null<T>(up_arr[kDy], "dy", holder[kDy]);
  up.dh_last = data_or_null<T>(up_arr[kDhLast], "dh_last", holder[kDhLast]);
  up.dc_last = data_or_null<T>(up_arr[kDcLast], "dc_last", holder[kDcLast]);

  rnnkit::SeqInputs<T> in;
  in.x = static_cast<const T*>(c.x.data());
  in.kernel = static_cast<const T*>(c.kernel.data());
  in.recurrent_kernel = static_cast<const T*>(c.recurrent_kernel.data());
  if (info.projected) in.projection_kernel = static_cast<const T*>(c.projection_kernel.data());
  in.mask = c.has_mask ? static_cast<const std::uint8_t*>(c.mask.data()) : nullptr;
  rnnkit::TrainCache<T> tc;
  for (int k = 0; k < rnnkit::kCacheArrayCount; ++k) {
    if (info.has_cache_array(k)) {
      tc.*kTrainMembers<T>[k] = static_cast<T*>(const_cast<void*>(c.train[k].data()));
    }
  }

  py::array_t<T> dx = pooled_array<T>({d.B, d.T, d.I});
  py::array_t<T> dkernel({d.I, d.GH()});
  py::array_t<T> drec({d.S(), d.GH()});
  py::array_t<T> dh0({d.B, d.S()});
  py::array_t<T> dbias = null_array<py::array_t<T>>(), dc0 = null_array<py::array_t<T>>();
  py::array_t<T> dproj = null_array<py::array_t<T>>();
  rnnkit::SeqGrads<T> g;
  g.dx = dx.mutable_data();
  g.dkernel = dkernel.mutable_data();
  g.drecurrent = drec.mutable_data();
  g.dh0 = dh0.mutable_data();
  if (info.projected) {
    dproj = py::array_t<T>({d.H, d.P});
    g.dprojection = dproj.mutable_data();
  }
  if (c.has_bias) {
    dbias = rnnkit::bias_rows(cell, c.opt) == 2 ? py::array_t<T>({index_t(2), d.GH()})
                                                : py::array_t<T>({d.GH()});
    g.dbias = dbias.mutable_data();
  }
  if (info.states == 2) {
    dc0 = py::array_t<T>({d.B, d.H});
    g.dc0 = dc0.mutable_data();
  }
  const SeqOptions opt = c.opt;
  run_without_gil([&] {
    rnnkit::PooledBuffer<T> work(
        static_cast<size_t>(rnnkit::backward_workspace_size(cell, d, opt)));
    rnnkit::kernels_for<T>(rnnkit::active_kernels()).backward_of(cell)(g, d, opt, in, tc, up,
                                                                        work.data());
  });
  py::dict grads;
  grads["x"] = dx;
  grads["kernel"] = dkernel;
  grads["recurrent_kernel"] = drec;
  if (info.projected) grads["projection_kernel"] = dproj;
  if (c.has_bias) grads["bias"] = dbias;
  grads["h0"] = dh0;
  if (info.states == 2) grads["c0"] = dc0;
  return grads;
}

// One backward call: the cache, then each upstream gradient converted and dtype-checked,
// then their shapes. upstream: dy, dh_last (, dc_last for two states).
py::dict backward(Cell cell, const py::handle& cache_obj, const py::handle* upstream) {
  const ForwardCache& c = require_cache(cache_obj, cell);
  const CellInfo& info = cell_info(cell);
  const Dims& d = c.dims;
  OptionalArray up[kUpCount];
  for (int i = 0; i < kUpCount; ++i) {
    if (!applies(kUpstreamRules[i], info)) continue;
    up[i] = OptionalArray(upstream[i], kUpstreamRules[i].name);
    if (up[i].given) check_dtype(kUpstreamRules[i], up[i].arr);
  }
  Sizes z;
  z.B = d.B, z.T = d.T, z.I = d.I, z.H = d.H, z.GH = d.GH(), z.G = d.G;
  z.S = d.S(), z.P = d.P, z.projected = info.projected;
  for (int i = 0; i < kUpCount; ++i) {
    if (up[i].given) check_shape(kUpstreamRules[i], up[i].arr, z);
  }
  try {
    return c.f64 ? run_backward<double>(c, up) : run_backward<float>(c, up);
  } catch (const std::bad_alloc&) {
    out_of_memory(cell, "_backward", d, c.f64,
                  rnnkit::backward_call_elements(cell, d, c.opt, c.has_bias));
  }
}

// ================================================================ the Python functions

template <std::size_t>
using Object = py::object;

// <name>_forward(x, kernel, recurrent_kernel, bias=None, *, h0=None, <extras>, mask=None,
//                go_backwards=False, training=True), extras as extra_count / extra_arg say;
// projected cells take projection_kernel after recurrent_kernel.
// Flags are taken as objects and checked by require_bool: pybind11's bool conversion would
// accept 1 or numpy scalars of any kind, and a string only with a generic message.
template <Cell C, class Seq>
struct ForwardFunction;
template <Cell C, std::size_t... Is>
struct ForwardFunction<C, std::index_sequence<Is...>> {
  static py::tuple call(py::object x, py::object kernel, py::object rk, py::object bias,
                        py::object h0, Object<Is>... extras, py::object mask,
                        py::object go_backwards, py::object training) {
    const py::handle fixed[] = {x, kernel, rk, py::none(), bias, h0};
    const py::handle extra[] = {extras..., py::handle()};
    return forward(C, fixed, extra, mask, go_backwards, training);
  }
  static py::tuple call_projected(py::object x, py::object kernel, py::object rk,
                                  py::object pk, py::object bias, py::object h0,
                                  Object<Is>... extras, py::object mask,
                                  py::object go_backwards, py::object training) {
    const py::handle fixed[] = {x, kernel, rk, pk, bias, h0};
    const py::handle extra[] = {extras..., py::handle()};
    return forward(C, fixed, extra, mask, go_backwards, training);
  }
  static void define(py::module_& m, const char* name) {
    if constexpr (cell_info(C).projected) {
      m.def(name, &call_projected, py::arg("x"), py::arg("kernel"),
            py::arg("recurrent_kernel"), py::arg("projection_kernel"),
            py::arg("bias") = py::none(), py::kw_only(), py::arg("h0") = py::none(),
            extra_arg(C, static_cast<int>(Is))..., py::arg("mask") = py::none(),
            py::arg("go_backwards") = false, py::arg("training") = true);
    } else {
      m.def(name, &call, py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"),
            py::arg("bias") = py::none(), py::kw_only(), py::arg("h0") = py::none(),
            extra_arg(C, static_cast<int>(Is))..., py::arg("mask") = py::none(),
            py::arg("go_backwards") = false, py::arg("training") = true);
    }
  }
};

// <name>_backward(cache, dy=None, dh_last=None[, dc_last=None]).
template <Cell C>
void define_backward(py::module_& m, const char* name) {
  if constexpr (cell_info(C).states == 2) {
    m.def(name,
          [](py::object cache, py::object dy, py::object dh_last, py::object dc_last) {
            const py::handle up[kUpCount] = {dy, dh_last, dc_last};
            return backward(C, cache, up);
          },
          py::arg("cache"), py::arg("dy") = py::none(), py::arg("dh_last") = py::none(),
          py::arg("dc_last") = py::none());
  } else {
    m.def(name,
          [](py::object cache, py::object dy, py::object dh_last) {
            const py::handle up[kUpCount] = {dy, dh_last, py::none()};
            return backward(C, cache, up);
          },
          py::arg("cache"), py::arg("dy") = py::none(), py::arg("dh_last") = py::none());
  }
}

}  // namespace

void register_cells(py::module_& m) {
  // The properties take the instance as a handle and check it was initialised by a forward
  // call (a `const ForwardCache&` argument would make pybind11 allocate uninitialised memory
  // for an instance made with __new__). Final: no Python subclass can make instances that
  // look like caches; no constructor.
  py::class_<ForwardCache>(m, "ForwardCache", py::is_final(),
                           "What a training forward keeps for its backward (opaque).")
      .def_property_readonly("dtype", [](py::handle self) {
        return cache_property_self(self).f64 ? py::dtype::of<double>() : py::dtype::of<float>();
      })
      .def_property_readonly("shape", [](py::handle self) {
        const ForwardCache& c = cache_property_self(self);
        return py::make_tuple(c.dims.B, c.dims.T, c.dims.S());
      }, "(batch, time, units) of the forward call (units: proj_size for projected cells), "
         "as the reference caches report it.")
      .def_property_readonly("go_backwards", [](py::handle self) {
        return cache_property_self(self).opt.go_backwards;
      })
      .def_property_readonly("nbytes", [](py::handle self) {
        const ForwardCache& c = cache_property_self(self);
        return rnnkit::train_cache_elements(c.cell, c.dims) * (c.f64 ? 8 : 4);
      }, "Bytes of workspace kept for backward.");

#define RNNKIT_CELL(Enum, name, gates, states, cache, options, proj)                      \
  ForwardFunction<Cell::Enum, std::make_index_sequence<extra_count(Cell::Enum)>>::define( \
      m, #name "_forward");                                                          \
  define_backward<Cell::Enum>(m, #name "_backward");
#include "rnnkit/cells.def"
#undef RNNKIT_CELL
}

}  // namespace rnnkit_py
