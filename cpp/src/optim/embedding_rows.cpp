// The gradient of an Embedding lookup as its touched rows (rnnkit/optim.hpp): a stable sort
// of the ids, then each distinct id's row summed from zero in occurrence order, which is
// what np.add.at into a zero matrix computes, bitwise. Compiled once (baseline ISA): only
// additions, so the ISA cannot change a result.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "rnnkit/optim.hpp"

namespace rnnkit {

namespace {

template <class T>
index_t row_sums(const std::int64_t* ids, index_t n_ids, const T* dy, index_t row_len,
                 std::int64_t* rows_out, T* sums_out) {
  // Positions in id order; stable: equal ids keep their occurrence order.
  std::vector<index_t> order(static_cast<size_t>(n_ids));
  std::iota(order.begin(), order.end(), index_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [ids](index_t x, index_t y) { return ids[x] < ids[y]; });
  index_t u = -1;
  for (index_t k = 0; k < n_ids; ++k) {
    const index_t p = order[static_cast<size_t>(k)];
    if (u < 0 || ids[p] != rows_out[u]) {
      rows_out[++u] = ids[p];
      T* row = sums_out + u * row_len;
      for (index_t i = 0; i < row_len; ++i) row[i] = T(0);
    }
    T* __restrict row = sums_out + u * row_len;
    const T* __restrict src = dy + p * row_len;
    for (index_t i = 0; i < row_len; ++i) row[i] = row[i] + src[i];
  }
  return u + 1;
}

}  // namespace

index_t embedding_row_sums(const std::int64_t* ids, index_t n_ids, const float* dy,
                           index_t row_len, std::int64_t* rows_out, float* sums_out) {
  return row_sums(ids, n_ids, dy, row_len, rows_out, sums_out);
}
index_t embedding_row_sums(const std::int64_t* ids, index_t n_ids, const double* dy,
                           index_t row_len, std::int64_t* rows_out, double* sums_out) {
  return row_sums(ids, n_ids, dy, row_len, rows_out, sums_out);
}

}  // namespace rnnkit
