// Fused optimizer updates (one pass over w, its gradient and its slots) and the row sums
// of an Embedding gradient. The kinds, their slots, coefficients and formulas are listed
// once, in rnnkit/optim.def. The update kernels are compiled once per ISA
// (cpp/src/optim/update.cpp, with -ffp-contract=off: bitwise equal to NumPy's formulas) and
// chosen with the cell kernels' ISA (active_kernels().isa).
#pragma once
#include <cstdint>

#include "rnnkit/dims.hpp"

namespace rnnkit {

enum class OptimKind : int {
#define RNNKIT_OPTIM(Enum, name, slots, coefs, rows_only) Enum,
#include "rnnkit/optim.def"
#undef RNNKIT_OPTIM
};

struct OptimKindInfo {
  const char* name;
  int slots;      // state arrays shaped as w
  int coefs;      // scalar coefficients
  bool rows_only; // row-sparse gradient: untouched rows are left alone (see optim.def)
};

constexpr OptimKindInfo kOptimKinds[] = {
#define RNNKIT_OPTIM(Enum, name, slots, coefs, rows_only) {#name, slots, coefs, rows_only != 0},
#include "rnnkit/optim.def"
#undef RNNKIT_OPTIM
};
constexpr int kOptimKindCount = sizeof(kOptimKinds) / sizeof(kOptimKinds[0]);
constexpr int kOptimMaxSlots = 3;
constexpr int kOptimMaxCoefs = 9;

inline const OptimKindInfo& optim_info(OptimKind k) { return kOptimKinds[static_cast<int>(k)]; }

// One update of one variable. Preconditions (checked by the bindings): w, g and the slots
// are C-contiguous, aligned, of dtype T and pairwise non-overlapping; slot[k] for
// k < slots(kind) has n elements.
//
// Dense gradient (rows == nullptr): g has n elements.
// Row-sparse gradient (rows != nullptr): w is (n / row_len, row_len); rows holds nrows
// strictly increasing row indices in [0, n / row_len) and g is (nrows, row_len): the summed
// gradient of those rows, every other row's gradient being zero.
template <class T>
struct OptimArgs {
  OptimKind kind = OptimKind::SGD;
  T* w = nullptr;
  const T* g = nullptr;
  T* slot[kOptimMaxSlots] = {nullptr, nullptr, nullptr};
  index_t n = 0;
  const std::int64_t* rows = nullptr;
  index_t nrows = 0;
  index_t row_len = 1;
  T coef[kOptimMaxCoefs] = {};
  bool decay = false;  // decoupled weight decay first: w = w - (w*wd)*wd_lr
  T wd = 0;
  T wd_lr = 0;
};

// Runs the update on the active ISA, split across the thread team for large arrays (the
// split is element-wise: results do not depend on the thread count).
void optim_update(const OptimArgs<float>& a);
void optim_update(const OptimArgs<double>& a);

// Embedding gradient as touched rows. ids: n_ids row indices in [0, num_rows); dy:
// (n_ids, row_len). Writes the distinct ids, increasing, to rows_out (room for n_ids) and
// their gradient rows to sums_out ((n_ids, row_len) room): each row is 0 plus every
// contribution of its id in occurrence order, exactly as np.add.at into zeros. Returns the
// number of distinct ids.
index_t embedding_row_sums(const std::int64_t* ids, index_t n_ids, const float* dy,
                           index_t row_len, std::int64_t* rows_out, float* sums_out);
index_t embedding_row_sums(const std::int64_t* ids, index_t n_ids, const double* dy,
                           index_t row_len, std::int64_t* rows_out, double* sums_out);

// Per-ISA entry points (cpp/src/optim/update.cpp, one copy per ISA namespace).
struct OptimTable {
  const char* isa;
  void (*f32)(const OptimArgs<float>&);
  void (*f64)(const OptimArgs<double>&);
};

}  // namespace rnnkit
