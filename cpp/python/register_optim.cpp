// The optimizer half of rnnkit._core: optim_kinds() (the table of rnnkit/optim.def),
// optim_update (one fused update of one variable, in place) and embedding_row_sums (an
// Embedding gradient as its touched rows). This file checks, converts and releases the GIL;
// the math is in cpp/src/optim/. Every check raises a Python exception naming the argument:
// the in-place arrays must already be C-contiguous, aligned, writeable float32/float64
// ndarrays (never silently copied: the update would be lost), and no written array may
// overlap another argument.
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "python/convert.hpp"
#include "python/register_optim.hpp"
#include "rnnkit/optim.hpp"

namespace rnnkit_py {

namespace {

using rnnkit::kOptimKindCount;
using rnnkit::kOptimKinds;
using rnnkit::OptimArgs;
using rnnkit::OptimKind;

constexpr int kNpyCContiguous = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_;
constexpr int kNpyAligned = py::detail::npy_api::NPY_ARRAY_ALIGNED_;
constexpr int kNpyWriteable = py::detail::npy_api::NPY_ARRAY_WRITEABLE_;

OptimKind kind_named(const std::string& name) {
  std::string known;
  for (int k = 0; k < kOptimKindCount; ++k) {
    if (name == kOptimKinds[k].name) return static_cast<OptimKind>(k);
    known += std::string(known.empty() ? "" : ", ") + kOptimKinds[k].name;
  }
  throw py::value_error("optim_update: unknown `kind` '" + name + "'; expected one of: " + known);
}

// An ndarray argument as it is (no conversion), C-contiguous and aligned; writeable if
// `written`. `what` names it in messages ("w", "slots[1]", ...).
py::array exact_array(const py::handle& obj, const std::string& what, bool written) {
  if (!py::isinstance<py::array>(obj)) {
    throw py::type_error("optim_update: `" + what + "` must be a numpy.ndarray, got " +
                         type_name(obj));
  }
  py::array a = py::reinterpret_borrow<py::array>(obj);
  const int need = kNpyCContiguous | kNpyAligned | (written ? kNpyWriteable : 0);
  if ((a.flags() & need) != need) {
    throw py::value_error("optim_update: `" + what + "` must be a C-contiguous, aligned" +
                          std::string(written ? ", writeable" : "") + " array (shape " +
                          shape_str(shape_of(a)) + ")");
  }
  return a;
}

void require_dtype(const py::array& a, const py::dtype& dt, const std::string& what) {
  if (!a.dtype().is(dt) && !a.dtype().equal(dt)) {
    throw py::type_error("optim_update: `" + what + "` must have dtype " +
                         std::string(py::str(dt)) + " (the dtype of w), got " + dtype_str(a));
  }
}

void require_shape(const py::array& a, const std::vector<wide_t>& shape,
                   const std::string& what) {
  if (shape_of(a) != shape) {
    throw py::value_error("optim_update: `" + what + "` must have shape " + shape_str(shape) +
                          ", got " + shape_str(shape_of(a)));
  }
}

struct Span {
  std::string what;
  const char* lo;
  const char* hi;
  bool written;
};

// No written array may share a byte with any other argument.
void require_disjoint(const std::vector<Span>& spans) {
  for (size_t i = 0; i < spans.size(); ++i) {
    for (size_t j = i + 1; j < spans.size(); ++j) {
      const Span& x = spans[i];
      const Span& y = spans[j];
      if (!(x.written || y.written) || x.lo == x.hi || y.lo == y.hi) continue;
      if (x.lo < y.hi && y.lo < x.hi) {
        throw py::value_error("optim_update: `" + x.what + "` and `" + y.what +
                              "` overlap in memory; every array must be a separate buffer");
      }
    }
  }
}

Span span_of(const py::array& a, const std::string& what, bool written) {
  const char* p = static_cast<const char*>(a.data());
  return {what, p, p + a.nbytes(), written};
}

template <class T>
void fill_and_run(OptimArgs<T>& args, py::array& w, const py::array& g,
                  std::vector<py::array>& slots, const std::vector<double>& coefs,
                  const py::array& rows, const std::pair<double, double>* decay) {
  args.w = static_cast<T*>(w.mutable_data());
  args.g = static_cast<const T*>(g.data());
  for (size_t k = 0; k < slots.size(); ++k) {
    args.slot[k] = static_cast<T*>(slots[k].mutable_data());
  }
  args.n = static_cast<index_t>(w.size());
  for (size_t k = 0; k < coefs.size(); ++k) args.coef[k] = static_cast<T>(coefs[k]);
  if (rows) {
    args.rows = static_cast<const std::int64_t*>(rows.data());
    args.nrows = static_cast<index_t>(rows.size());
    index_t len = 1;  // w.shape[1:] may hold a 0 while w.shape[0] does not
    for (py::ssize_t d = 1; d < w.ndim(); ++d) len *= static_cast<index_t>(w.shape(d));
    args.row_len = len;
  }
  if (decay) {
    args.decay = true;
    args.wd = static_cast<T>(decay->first);
    args.wd_lr = static_cast<T>(decay->second);
  }
  run_kernel(true, [&] { rnnkit::optim_update(args); });
}

void optim_update(const std::string& kind_name, const py::handle& w_obj,
                  const py::handle& g_obj, const py::sequence& slot_objs,
                  const std::vector<double>& coefs, const py::handle& rows_obj,
                  const py::handle& decay_obj) {
  const OptimKind kind = kind_named(kind_name);
  const rnnkit::OptimKindInfo& info = rnnkit::optim_info(kind);
  py::array w = exact_array(w_obj, "w", true);
  // Native byte order only: w is written in place, never converted.
  const bool f64 = w.dtype().equal(py::dtype::of<double>());
  if (!f64 && !w.dtype().equal(py::dtype::of<float>())) {
    throw py::type_error("optim_update: `w` must be float32 or float64 (native byte order), "
                         "got " + dtype_str(w));
  }
  const py::dtype dt = w.dtype();
  const std::vector<wide_t> wshape = shape_of(w);
  std::vector<Span> spans{span_of(w, "w", true)};

  if (static_cast<int>(py::len(slot_objs)) != info.slots) {
    throw py::value_error("optim_update: kind '" + kind_name + "' takes " +
                          std::to_string(info.slots) + " slot array(s) in `slots`, got " +
                          std::to_string(py::len(slot_objs)));
  }
  std::vector<py::array> slots;
  for (int k = 0; k < info.slots; ++k) {
    const std::string what = "slots[" + std::to_string(k) + "]";
    slots.push_back(exact_array(slot_objs[k], what, true));
    require_dtype(slots.back(), dt, what);
    require_shape(slots.back(), wshape, what);
    spans.push_back(span_of(slots.back(), what, true));
  }
  if (static_cast<int>(coefs.size()) != info.coefs) {
    throw py::value_error("optim_update: kind '" + kind_name + "' takes " +
                          std::to_string(info.coefs) + " coefficient(s) in `coefs`, got " +
                          std::to_string(coefs.size()));
  }

  py::array rows = null_array();
  std::vector<wide_t> gshape = wshape;
  if (!rows_obj.is_none()) {
    if (wshape.empty()) {
      throw py::value_error("optim_update: `rows` needs a `w` with at least one dimension");
    }
    rows = exact_array(rows_obj, "rows", false);
    if (!rows.dtype().equal(py::dtype::of<std::int64_t>()) || rows.ndim() != 1) {
      throw py::type_error("optim_update: `rows` must be a 1-D int64 array, got " +
                           dtype_str(rows) + " of shape " + shape_str(shape_of(rows)));
    }
    const std::int64_t* r = static_cast<const std::int64_t*>(rows.data());
    for (py::ssize_t j = 0; j < rows.size(); ++j) {
      if (r[j] < 0 || r[j] >= static_cast<std::int64_t>(w.shape(0)) || (j > 0 && r[j] <= r[j - 1])) {
        throw py::value_error("optim_update: `rows` must be strictly increasing row indices "
                              "in [0, " + int_str(wshape[0]) + "); rows[" + std::to_string(j) +
                              "] = " + std::to_string(r[j]));
      }
    }
    gshape[0] = rows.size();
    spans.push_back(span_of(rows, "rows", false));
  }
  py::array g = exact_array(g_obj, "grad", false);
  require_dtype(g, dt, "grad");
  require_shape(g, gshape, "grad");
  spans.push_back(span_of(g, "grad", false));
  require_disjoint(spans);

  std::pair<double, double> decay{0.0, 0.0};
  const bool has_decay = !decay_obj.is_none();
  if (has_decay) {
    try {
      decay = decay_obj.cast<std::pair<double, double>>();
    } catch (const py::cast_error&) {
      throw py::type_error("optim_update: `decay` must be None or a pair of numbers "
                           "(weight_decay, learning_rate), got " + type_name(decay_obj));
    }
  }
  const std::pair<double, double>* dp = has_decay ? &decay : nullptr;
  if (f64) {
    OptimArgs<double> args;
    args.kind = kind;
    fill_and_run(args, w, g, slots, coefs, rows, dp);
  } else {
    OptimArgs<float> args;
    args.kind = kind;
    fill_and_run(args, w, g, slots, coefs, rows, dp);
  }
}

template <class T>
py::tuple row_sums(const py::array& ids, const py::array& dy, index_t row_len) {
  const index_t n = static_cast<index_t>(ids.size());
  py::array_t<std::int64_t> rows = output_array<std::int64_t>({n});
  py::array_t<T> sums = output_array<T>({n, row_len});
  index_t u = 0;
  const std::int64_t* ip = static_cast<const std::int64_t*>(ids.data());
  const T* dp = static_cast<const T*>(dy.data());
  std::int64_t* rp = rows.mutable_data();
  T* sp = sums.mutable_data();
  run_kernel(true, [&] { u = rnnkit::embedding_row_sums(ip, n, dp, row_len, rp, sp); });
  py::slice head(0, u, 1);
  return py::make_tuple(rows[head], sums[head]);
}

py::tuple embedding_row_sums(const py::handle& ids_obj, const py::handle& dy_obj,
                             index_t num_rows) {
  py::array ids = to_kernel_array<std::int64_t>(as_array(ids_obj, "ids"), "ids");
  py::array dy_in = as_array(dy_obj, "dy");
  if (ids.ndim() != 1) {
    throw py::value_error("embedding_row_sums: `ids` must be 1-D, got shape " +
                          shape_str(shape_of(ids)));
  }
  if (dy_in.ndim() != 2 || dy_in.shape(0) != ids.shape(0)) {
    throw py::value_error("embedding_row_sums: `dy` must have shape (" +
                          std::to_string(ids.shape(0)) + ", row_len) (one row per id), got " +
                          shape_str(shape_of(dy_in)));
  }
  const std::int64_t* ip = static_cast<const std::int64_t*>(ids.data());
  for (py::ssize_t j = 0; j < ids.size(); ++j) {
    if (ip[j] < 0 || ip[j] >= num_rows) {
      throw py::value_error("embedding_row_sums: `ids` must be in [0, " +
                            std::to_string(num_rows) + "), got ids[" + std::to_string(j) +
                            "] = " + std::to_string(ip[j]));
    }
  }
  const index_t row_len = static_cast<index_t>(dy_in.shape(1));
  if (is_float64(dy_in)) return row_sums<double>(ids, to_kernel_array<double>(dy_in, "dy"), row_len);
  if (dy_in.dtype().equal(py::dtype::of<float>())) {
    return row_sums<float>(ids, to_kernel_array<float>(dy_in, "dy"), row_len);
  }
  throw py::type_error("embedding_row_sums: `dy` must be float32 or float64, got " +
                       dtype_str(dy_in));
}

}  // namespace

void register_optim(py::module_& m) {
  m.def("optim_kinds", [] {
    py::dict out;
    for (int k = 0; k < kOptimKindCount; ++k) {
      out[kOptimKinds[k].name] = py::make_tuple(kOptimKinds[k].slots, kOptimKinds[k].coefs,
                                                kOptimKinds[k].rows_only);
    }
    return out;
  }, "{kind: (slots, coefs, rows_only)} of the fused updates (rnnkit/optim.def).");
  m.def("optim_update", &optim_update, py::arg("kind"), py::arg("w"), py::arg("grad"),
        py::arg("slots"), py::arg("coefs"), py::arg("rows") = py::none(),
        py::arg("decay") = py::none(),
        "Fused update of `w` and `slots` in place (rnnkit/optim.def); `rows`: row-sparse "
        "`grad` of those rows; `decay`: (weight_decay, learning_rate) applied first.");
  m.def("embedding_row_sums", &embedding_row_sums, py::arg("ids"), py::arg("dy"),
        py::arg("num_rows"),
        "(rows, sums): the distinct ids, increasing, and their summed rows of `dy` "
        "(bitwise np.add.at into zeros).");
}

}  // namespace rnnkit_py
