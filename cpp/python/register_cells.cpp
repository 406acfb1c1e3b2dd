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
#include <cstring>
#include <initializer_list>
#include <cstdint>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "python/convert.hpp"
#include "python/fast_call.hpp"
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

// An expected shape: up to three sizes, on the stack (this runs for every argument of every
// call; the vectors of a message are built only for a mismatch).
struct ExpectedShape {
  int ndim = 0;
  wide_t size[3] = {0, 0, 0};
  std::vector<wide_t> vector() const { return std::vector<wide_t>(size, size + ndim); }
};

ExpectedShape expected_shape(const ArgRule& r, const Sizes& z) {
  ExpectedShape shape;
  for (Sym s : r.dims) {
    if (!present(s, z)) continue;
    wide_t v = 0;
    switch (s) {
      case Sym::B: v = z.B; break;
      case Sym::T: v = z.T; break;
      case Sym::I: v = z.I; break;
      case Sym::H: v = z.H; break;
      case Sym::GH: v = z.GH; break;
      case Sym::BiasRows: v = 2; break;
      case Sym::S: v = z.S; break;
      case Sym::P: v = z.P; break;
      case Sym::End: break;
    }
    shape.size[shape.ndim++] = v;
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
  const ExpectedShape expected = expected_shape(r, z);
  bool same = a.ndim() == expected.ndim;
  for (int axis = 0; same && axis < expected.ndim; ++axis) {
    same = a.shape()[axis] == expected.size[axis];
  }
  if (same) return;
  throw py::value_error(std::string(r.name) + " must have shape " +
                        shape_str(expected.vector()) + "; got " + shape_str(shape_of(a)));
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
// others after the arrays (the reference's order). Their order here is the order of the
// keyword parameters (after h0 and c0), as in rnnkit.ops' signatures, which pass them on by
// position (tests/test_call_path.py checks the two signatures agree).
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
    {rnnkit::kOptResetAfter, "reset_after", OptionKind::Flag, true, nullptr,
     &SeqOptions::reset_after, nullptr},
    {rnnkit::kOptActivation, "activation", OptionKind::Activation, false, "tanh", nullptr,
     &SeqOptions::activation},
    {rnnkit::kOptRecurrentActivation, "recurrent_activation", OptionKind::Activation, false,
     "sigmoid", nullptr, &SeqOptions::recurrent_activation},
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

Param extra_param(Cell cell, int i) {
  const CellInfo& c = cell_info(cell);
  if (c.states == 2 && i-- == 0) return {"c0", py::none()};
  for (const OptionSpec& s : kOptionSpecs) {
    if (!c.reads(s.bit) || i-- != 0) continue;
    if (s.kind == OptionKind::Flag) return {s.name, py::bool_(s.flag_default)};
    return {s.name, py::str(s.str_default)};
  }
  throw std::logic_error("extra_param: no such argument");
}

// ================================================================ the cache

// What a training forward returns as `cache`: the validated inputs (converted to the result
// dtype, private copies) and the TrainCache arrays BPTT reads, all in ONE pool block (one
// allocation a call instead of one NumPy array, capsule and pool block per array). One Python
// type for every cell; messages name it after its cell ("LSTMCache", as the reference's
// classes are named).
struct ForwardCache {
  Cell cell = Cell{};
  Dims dims;
  SeqOptions opt;
  bool f64 = false;
  bool has_bias = false;
  PoolBlock block;
  explicit ForwardCache(std::size_t bytes) : block(bytes) {}
  // Into `block`; null when absent: projection_kernel only for projected cells, mask only
  // when given (uint8 (B, T), nonzero = keep), train[k] only for the cell's arrays.
  const void* x = nullptr;
  const void* kernel = nullptr;
  const void* recurrent_kernel = nullptr;
  const void* projection_kernel = nullptr;
  const std::uint8_t* mask = nullptr;
  void* train[rnnkit::kCacheArrayCount] = {};
};

template <class T>
constexpr T* rnnkit::TrainCache<T>::*kTrainMembers[rnnkit::kCacheArrayCount] = {
    &rnnkit::TrainCache<T>::gates, &rnnkit::TrainCache<T>::h_prev,
    &rnnkit::TrainCache<T>::c_prev, &rnnkit::TrainCache<T>::aux, &rnnkit::TrainCache<T>::m};

// ForwardCache's pybind11 type record, set once by register_cells (looking it up by typeid
// costs a hash of the type name per use).
const py::detail::type_info* g_cache_type = nullptr;

// Whether obj is a ForwardCache (the class is final: its exact type).
bool is_cache(const py::handle& obj) {
  return Py_TYPE(obj.ptr()) == g_cache_type->type;
}

// The C++ cache behind `obj`, a ForwardCache instance; nullptr when no forward call made it
// (an instance from __new__ or copy.copy has no constructed C++ object: pybind11 would hand
// out uninitialised memory).
const ForwardCache* initialised_cache(const py::handle& obj) {
  auto* inst = reinterpret_cast<py::detail::instance*>(obj.ptr());
  const py::detail::value_and_holder v_h = inst->get_value_and_holder(g_cache_type, false);
  if (!v_h || !v_h.holder_constructed() || v_h.value_ptr() == nullptr) return nullptr;
  return v_h.value_ptr<ForwardCache>();
}

// A new ForwardCache instance owning `cache`: pybind11's generic cast given the type record
// (py::cast would first look it up by typeid, hashing and comparing type names).
py::object wrap_cache(std::unique_ptr<ForwardCache> cache) {
  const py::handle h = py::detail::type_caster_generic::cast(
      py::detail::cast_sources(cache.get(), g_cache_type), py::return_value_policy::take_ownership,
      py::handle(), nullptr, nullptr, &cache);  // moves the holder into the instance
  if (!h) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(h);
}

// For the read-only properties: a ForwardCache, initialised.
const ForwardCache& cache_property_self(const py::handle& self) {
  if (!is_cache(self)) {  // e.g. ForwardCache.shape.fget(42)
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
  const auto refuse = [&](const std::string& got) {
    return py::type_error(std::string("cache must be the cache returned by ") + want.name +
                          "_forward(..., training=True); got " + got);
  };
  if (!is_cache(obj)) throw refuse(type_name(obj));
  const ForwardCache* c = initialised_cache(obj);
  if (!c) throw refuse(std::string("an uninitialised ") + want.cache_name);
  if (c->cell != cell) throw refuse(cell_info(c->cell).cache_name);
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

// Floating-point operations of a forward call, roughly: the input projection, the recurrent
// products and (projected cells) the projection; backward does about twice as many. It only
// decides whether the call releases the GIL.
double forward_flops(const Dims& d) {
  return 2.0 * static_cast<double>(d.rows()) *
         (static_cast<double>(d.I + d.S()) * static_cast<double>(d.GH()) +
          static_cast<double>(d.H) * static_cast<double>(d.P));
}

// Kernel calls of fewer FLOPs keep the GIL (run_kernel): at the ~10-20 GFLOP/s of such small
// problems they last well under 100 us (the interpreter's switch interval is 5 ms), where
// releasing it would only add the release, the re-take and the shutdown handshake.
constexpr double kKeepGilFlops = 1e6;

// Byte offsets of a training cache's arrays in its one block, each 64-byte aligned.
struct CacheLayout {
  std::size_t x = 0, kernel = 0, recurrent_kernel = 0, projection_kernel = 0, mask = 0;
  std::size_t train[rnnkit::kCacheArrayCount] = {};
  std::size_t bytes = 0;

  std::size_t take(std::size_t n) {
    const std::size_t at = bytes;
    bytes += (n + 63) / 64 * 64;
    return at;
  }
};

template <class T>
CacheLayout cache_layout(Cell cell, const Dims& d, bool has_mask) {
  const CellInfo& info = cell_info(cell);
  const auto elements = [](index_t n) { return static_cast<std::size_t>(n) * sizeof(T); };
  CacheLayout l;
  l.x = l.take(elements(d.rows() * d.I));
  l.kernel = l.take(elements(d.I * d.GH()));
  l.recurrent_kernel = l.take(elements(d.S() * d.GH()));
  if (info.projected) l.projection_kernel = l.take(elements(d.H * d.P));
  if (has_mask) l.mask = l.take(static_cast<std::size_t>(d.rows()));
  for (int k = 0; k < rnnkit::kCacheArrayCount; ++k) {
    l.train[k] = l.take(elements(d.rows() * rnnkit::train_cache_columns(cell, k, d)));
  }
  return l;
}

// A private copy of `a` (a kernel array: C-contiguous, the result dtype) at block + offset.
const void* copy_into(const PoolBlock& block, std::size_t offset, const py::array& a) {
  char* to = block.data() + offset;
  std::memcpy(to, a.data(), static_cast<std::size_t>(a.nbytes()));
  return to;
}

// A tuple of new references to `items` (cheaper than py::make_tuple's per-item casts).
py::tuple tuple_of(std::initializer_list<py::handle> items) {
  py::tuple t(items.size());
  std::size_t i = 0;
  for (py::handle h : items) PyTuple_SET_ITEM(t.ptr(), i++, h.inc_ref().ptr());
  return t;
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
  // The mask as (B, T) bytes, nonzero = keep: astype(bool) semantics (nonzero and NaN keep
  // the step).
  py::array mask = arg[kMask].given ? to_kernel_array(arg[kMask].arr, "mask", dtype_of<bool>())
                                    : null_array();

  rnnkit::SeqInputs<T> in;
  in.x = static_cast<const T*>(x.data());
  in.kernel = static_cast<const T*>(kernel.data());
  in.recurrent_kernel = static_cast<const T*>(rk.data());
  if (info.projected) in.projection_kernel = static_cast<const T*>(pk.data());
  in.bias = data_or_null<T>(arg[kBias], "bias", bias_h);
  in.h0 = data_or_null<T>(arg[kH0], "h0", h0_h);
  in.c0 = data_or_null<T>(arg[kC0], "c0", c0_h);
  if (arg[kMask].given) in.mask = static_cast<const std::uint8_t*>(mask.data());

  py::array_t<T> y = output_array<T>({d.B, d.T, d.S()});
  py::array_t<T> h_last = output_array<T>({d.B, d.S()});
  py::array_t<T> c_last = null_array<py::array_t<T>>();
  rnnkit::SeqOutputs<T> out;
  out.y = y.mutable_data();
  out.h_last = h_last.mutable_data();
  if (info.states == 2) {
    c_last = output_array<T>({d.B, d.H});
    out.c_last = c_last.mutable_data();
  }

  std::unique_ptr<ForwardCache> cache;
  rnnkit::TrainCache<T> tc;
  if (a.training) {
    // Private copies: editing the caller's arrays between forward and backward must not
    // change the gradients.
    const CacheLayout l = cache_layout<T>(cell, d, arg[kMask].given);
    cache.reset(new ForwardCache(l.bytes));
    cache->cell = cell;
    cache->dims = d;
    cache->opt = a.opt;
    cache->f64 = std::is_same<T, double>::value;
    cache->has_bias = arg[kBias].given;
    const PoolBlock& block = cache->block;
    cache->x = copy_into(block, l.x, x);
    cache->kernel = copy_into(block, l.kernel, kernel);
    cache->recurrent_kernel = copy_into(block, l.recurrent_kernel, rk);
    if (info.projected) cache->projection_kernel = copy_into(block, l.projection_kernel, pk);
    if (arg[kMask].given) {
      cache->mask = static_cast<const std::uint8_t*>(copy_into(block, l.mask, mask));
    }
    for (int k = 0; k < rnnkit::kCacheArrayCount; ++k) {
      if (!info.has_cache_array(k)) continue;
      cache->train[k] = block.data() + l.train[k];
      tc.*kTrainMembers<T>[k] = static_cast<T*>(cache->train[k]);
    }
  }

  const rnnkit::TrainCache<T>* tcp = a.training ? &tc : nullptr;
  const SeqOptions opt = a.opt;
  run_kernel(forward_flops(d) >= kKeepGilFlops, [&] {
    rnnkit::PooledBuffer<T> work(
        static_cast<size_t>(rnnkit::forward_workspace_size(cell, d, opt)));
    rnnkit::kernels_for<T>(rnnkit::active_kernels()).forward_of(cell)(out, d, opt, in, tcp,
                                                                       work.data());
  });

  py::object cache_obj = cache ? wrap_cache(std::move(cache)) : py::none();
  if (info.states == 2) return tuple_of({y, h_last, c_last, cache_obj});
  return tuple_of({y, h_last, cache_obj});
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

// The keys of backward's dict, interned once (a key made from a C string per call costs a
// UTF-8 decode and a hash). Never destroyed: no Python object may be released after the
// interpreter is gone.
struct GradKeys {
  py::object x, kernel, recurrent_kernel, projection_kernel, bias, h0, c0;
};
const GradKeys& grad_keys() {
  static const GradKeys* keys = [] {
    const auto key = [](const char* s) {
      PyObject* k = PyUnicode_InternFromString(s);
      if (!k) throw py::error_already_set();
      return py::reinterpret_steal<py::object>(k);
    };
    return new GradKeys{key("x"), key("kernel"), key("recurrent_kernel"),
                        key("projection_kernel"), key("bias"), key("h0"), key("c0")};
  }();
  return *keys;
}

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
  in.x = static_cast<const T*>(c.x);
  in.kernel = static_cast<const T*>(c.kernel);
  in.recurrent_kernel = static_cast<const T*>(c.recurrent_kernel);
  in.projection_kernel = static_cast<const T*>(c.projection_kernel);
  in.mask = c.mask;
  rnnkit::TrainCache<T> tc;
  for (int k = 0; k < rnnkit::kCacheArrayCount; ++k) {
    tc.*kTrainMembers<T>[k] = static_cast<T*>(c.train[k]);
  }

  py::array_t<T> dx = output_array<T>({d.B, d.T, d.I});
  py::array_t<T> dkernel = output_array<T>({d.I, d.GH()});
  py::array_t<T> drec = output_array<T>({d.S(), d.GH()});
  py::array_t<T> dh0 = output_array<T>({d.B, d.S()});
  py::array_t<T> dbias = null_array<py::array_t<T>>(), dc0 = null_array<py::array_t<T>>();
  py::array_t<T> dproj = null_array<py::array_t<T>>();
  rnnkit::SeqGrads<T> g;
  g.dx = dx.mutable_data();
  g.dkernel = dkernel.mutable_data();
  g.drecurrent = drec.mutable_data();
  g.dh0 = dh0.mutable_data();
  if (info.projected) {
    dproj = output_array<T>({d.H, d.P});
    g.dprojection = dproj.mutable_data();
  }
  if (c.has_bias) {
    dbias = rnnkit::bias_rows(cell, c.opt) == 2 ? output_array<T>({index_t(2), d.GH()})
                                                : output_array<T>({d.GH()});
    g.dbias = dbias.mutable_data();
  }
  if (info.states == 2) {
    dc0 = output_array<T>({d.B, d.H});
    g.dc0 = dc0.mutable_data();
  }
  const SeqOptions opt = c.opt;
  run_kernel(2 * forward_flops(d) >= kKeepGilFlops, [&] {
    rnnkit::PooledBuffer<T> work(
        static_cast<size_t>(rnnkit::backward_workspace_size(cell, d, opt)));
    rnnkit::kernels_for<T>(rnnkit::active_kernels()).backward_of(cell)(g, d, opt, in, tc, up,
                                                                        work.data());
  });
  const GradKeys& key = grad_keys();
  py::dict grads;
  grads[key.x] = dx;
  grads[key.kernel] = dkernel;
  grads[key.recurrent_kernel] = drec;
  if (info.projected) grads[key.projection_kernel] = dproj;
  if (c.has_bias) grads[key.bias] = dbias;
  grads[key.h0] = dh0;
  if (info.states == 2) grads[key.c0] = dc0;
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

// <name>_forward(x, kernel, recurrent_kernel, bias=None, *, h0=None, <extras>, mask=None,
//                go_backwards=False, training=True), extras as extra_count / extra_param say;
// projected cells take projection_kernel after recurrent_kernel. Vectorcall functions
// (fast_call.hpp). Unlike rnnkit.ops' signature, every parameter may also be passed by
// position: ops passes them all that way (no keyword matching at all).
// Flags are taken as objects and checked by require_bool: a bool conversion would accept 1
// or numpy scalars of any kind, and a string only with a generic message.
template <Cell C>
struct ForwardEntry {
  static constexpr bool kProjected = cell_info(C).projected;
  static constexpr int kExtras = extra_count(C);
  // x, kernel, recurrent_kernel[, projection_kernel], bias, h0, extras, mask, two flags
  static constexpr int kParams = (kProjected ? 5 : 4) + 1 + kExtras + 3;
  static inline const CallSignature* signature = nullptr;  // set by define(); never freed

  static PyObject* call(PyObject*, PyObject* const* args, Py_ssize_t nargsf, PyObject* kwnames) {
    return guarded([&]() -> py::object {
      PyObject* a[kParams];
      if (!signature->bind(args, nargsf, kwnames, a)) throw py::error_already_set();
      int i = 0;
      py::handle fixed[6];  // x, kernel, recurrent_kernel, projection_kernel, bias, h0
      for (int f = 0; f < 6; ++f) {
        fixed[f] = (f == 3 && !kProjected) ? py::handle(Py_None) : py::handle(a[i++]);
      }
      py::handle extra[kExtras + 1];
      for (int e = 0; e < kExtras; ++e) extra[e] = a[i++];
      return forward(C, fixed, extra, a[i], a[i + 1], a[i + 2]);
    });
  }

  static void define(py::module_& m, const char* name) {
    std::vector<Param> p = {{"x", {}}, {"kernel", {}}, {"recurrent_kernel", {}}};
    if (kProjected) p.push_back({"projection_kernel", {}});
    p.push_back({"bias", py::none()});
    p.push_back({"h0", py::none()});
    for (int e = 0; e < kExtras; ++e) p.push_back(extra_param(C, e));
    p.push_back({"mask", py::none()});
    p.push_back({"go_backwards", py::bool_(false)});
    p.push_back({"training", py::bool_(true)});
    signature = new CallSignature(name, std::move(p), kParams);
    add_fast_function(m, name, &call,
                      signature->text_signature() + "See rnnkit.ops." + name + ".");
  }
};

// <name>_backward(cache, dy=None, dh_last=None[, dc_last=None]).
template <Cell C>
struct BackwardEntry {
  static constexpr int kParams = 1 + kUpCount - (cell_info(C).states == 2 ? 0 : 1);
  static inline const CallSignature* signature = nullptr;  // set by define(); never freed

  static PyObject* call(PyObject*, PyObject* const* args, Py_ssize_t nargsf, PyObject* kwnames) {
    return guarded([&]() -> py::object {
      PyObject* a[kParams];
      if (!signature->bind(args, nargsf, kwnames, a)) throw py::error_already_set();
      const py::handle up[kUpCount] = {a[1], a[2], kParams > 3 ? a[kParams - 1] : Py_None};
      return backward(C, a[0], up);
    });
  }

  static void define(py::module_& m, const char* name) {
    std::vector<Param> p = {{"cache", {}}, {"dy", py::none()}, {"dh_last", py::none()}};
    if (cell_info(C).states == 2) p.push_back({"dc_last", py::none()});
    signature = new CallSignature(name, std::move(p), kParams);
    add_fast_function(m, name, &call,
                      signature->text_signature() + "See rnnkit.ops." + name + ".");
  }
};

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
  g_cache_type = py::detail::get_type_info(typeid(ForwardCache));

#define RNNKIT_CELL(Enum, name, gates, states, cache, options, proj) \
  ForwardEntry<Cell::Enum>::define(m, #name "_forward");             \
  BackwardEntry<Cell::Enum>::define(m, #name "_backward");
#include "rnnkit/cells.def"
#undef RNNKIT_CELL
}

}  // namespace rnnkit_py
