// The one matrix-multiply entry point of rnnkit. Every large product (input projection,
// d_kernel, d_recurrent_kernel, dx) goes through gemm(), compiled once per ISA.
#pragma once
#include "rnnkit/dims.hpp"
#include "rnnkit/isa.hpp"

namespace rnnkit {

enum class Trans : bool { No = false, Yes = true };

namespace RNNKIT_ISA_NS {

// Row-major C[M, N] = beta * C + op(A)[M, K] @ op(B)[K, N], beta in {0, 1}.
// lda/ldb/ldc are row strides of the matrices as stored (before op):
//   op(A) = A (M x K, stride lda) or A^T with A stored K x M (stride lda); likewise B.
// A, B and C must be aligned to alignof(T) (pack_a/pack_b read T elements directly); any
// row stride is fine.
// With K == 0 the product is zero (C = beta * C). Runs on the thread team when the product
// is large enough, split over output tiles only (never over K): every element is computed
// with the same operation order whatever the thread count, so results are bitwise identical.
template <class T>
void gemm(Trans trans_a, Trans trans_b, index_t M, index_t N, index_t K,
          const T* A, index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc);

// C[M, N] = A[M, K] @ B[K, N] (neither transposed, beta = 0) on the calling thread only, for a
// few rows M: B is read in place, row by row in runs of 8 vectors (prefetch-friendly, no
// packing). Each element is one FMA chain over k in order, as in gemm() and the recurrent
// tiles, so it gives their bits. For callers already inside a team run (a thread's share).
template <class T>
void gemm_rows_in_place(index_t M, index_t N, index_t K, const T* A, index_t lda, const T* B,
                        index_t ldb, T* C, index_t ldc);

// out[c] = sum_r A[r, c] for r < rows (A stride lda), by pairwise halving over blocks of
// rows so the rounding error grows like log(rows), not rows (needed for fp32 dbias, K=B*T).
template <class T>
void column_sums(T* out, const T* A, index_t rows, index_t cols, index_t lda);

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
