// Cache-blocked GEMM with packed panels (BLIS structure: NC/KC/MC loops around an MR x NR
// register tile), written once over Vec<T> and compiled per ISA. The tile is NR = 2 vectors
// wide and MR rows tall, 2*MR accumulators in registers (Blocking below): MR = 6 with 16-
// and 32-byte vectors (12 of the 16 registers; fp32 tiles: generic 6x8, AVX2 6x16), MR = 12
// with AVX-512 (24 of its 32 registers; fp32 tile 12x32). fp64 tiles have half the columns.
#include "rnnkit/gemm.hpp"

#include "rnnkit/simd.hpp"
#include "rnnkit/threadpool.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {
namespace {

template <class T>
struct Blocking {
  // Rows of the register tile: 2*MR accumulators (AVX-512 has 32 vector registers).
  static constexpr index_t MR = RNNKIT_VECTOR_BYTES == 64 ? 12 : 6;
  static constexpr index_t NR = 2 * lanes<T>();    // columns: two vectors
  static constexpr index_t KC = 256;               // depth of a packed panel (L1)
  static constexpr index_t MC = 72;                // rows of packed A (L2), multiple of MR
  static constexpr index_t NC = 3072;              // columns of packed B, multiple of NR
};

// Element (r, c) of op(M) where M is stored row-major with stride ld.
template <class T>
inline T op_at(const T* M, index_t ld, Trans t, index_t r, index_t c) {
  return t == Trans::No ? M[r * ld + c] : M[c * ld + r];
}

// Packs op(B)[k0:k0+kc, j0:j0+nc] into panels of NR columns: dst[p][k][NR], zero-padded.
template <class T>
void pack_b(T* dst, const T* B, index_t ldb, Trans tb, index_t k0, index_t kc, index_t j0,
            index_t nc) {
  constexpr index_t NR = Blocking<T>::NR;
  for (index_t jp = 0; jp < nc; jp += NR) {
    const index_t nr = min_index(NR, nc - jp);
    if (tb == Trans::No && nr == NR) {  // whole panel rows: fixed-length copies (vectorised)
      for (index_t k = 0; k < kc; ++k) copy_n(B + (k0 + k) * ldb + j0 + jp, NR, dst + k * NR);
      dst += kc * NR;
      continue;
    }
    for (index_t k = 0; k < kc; ++k) {
      T* row = dst + k * NR;
      if (tb == Trans::No) {
        const T* src = B + (k0 + k) * ldb + j0 + jp;
        for (index_t j = 0; j < nr; ++j) row[j] = src[j];
      } else {
        for (index_t j = 0; j < nr; ++j) row[j] = B[(j0 + jp + j) * ldb + k0 + k];
      }
      for (index_t j = nr; j < NR; ++j) row[j] = T(0);
    }
    dst += kc * NR;
  }
}

// Packs op(A)[i0:i0+mc, k0:k0+kc] into panels of MR rows: dst[p][k][MR], zero-padded.
template <class T>
void pack_a(T* dst, const T* A, index_t lda, Trans ta, index_t i0, index_t mc, index_t k0,
            index_t kc) {
  constexpr index_t MR = Blocking<T>::MR;
  for (index_t ip = 0; ip < mc; ip += MR) {
    const index_t mr = min_index(MR, mc - ip);
    if (mr == MR) {  // whole panels: fixed trip counts, no per-element transpose test
      if (ta == Trans::Yes) {  // op(A) row i is A's column: MR contiguous values per k
        for (index_t k = 0; k < kc; ++k) copy_n(A + (k0 + k) * lda + i0 + ip, MR, dst + k * MR);
      } else {  // MR rows of A, read along each row (contiguous), written MR apart
        for (index_t i = 0; i < MR; ++i) {
          const T* src = A + (i0 + ip + i) * lda + k0;
          for (index_t k = 0; k < kc; ++k) dst[k * MR + i] = src[k];
        }
      }
      dst += kc * MR;
      continue;
    }
    for (index_t k = 0; k < kc; ++k) {
      T* col = dst + k * MR;
      for (index_t i = 0; i < mr; ++i) col[i] = op_at(A, lda, ta, i0 + ip + i, k0 + k);
      for (index_t i = mr; i < MR; ++i) col[i] = T(0);
    }
    dst += kc * MR;
  }
}

// C[mr, nr] (+)= Ap[kc][MR] @ Bp[kc][NR]; accumulate selects C += (else C =).
template <class T>
void micro_kernel(index_t kc, const T* __restrict Ap, const T* __restrict Bp, T* C,
                  index_t ldc, index_t mr, index_t nr, bool accumulate) {
  constexpr index_t MR = Blocking<T>::MR, NR = Blocking<T>::NR, V = lanes<T>();
  Vec<T> acc[MR][2];
#pragma GCC unroll 12
  for (index_t i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = Vec<T>{};
  for (index_t k = 0; k < kc; ++k) {
    const Vec<T> b0 = load(Bp + k * NR), b1 = load(Bp + k * NR + V);
#pragma GCC unroll 12
    for (index_t i = 0; i < MR; ++i) {
      const Vec<T> a = broadcast_load(Ap + k * MR + i);
      acc[i][0] += a * b0;
      acc[i][1] += a * b1;
    }
  }
  if (mr == MR && nr == NR) {
#pragma GCC unroll 12
    for (index_t i = 0; i < MR; ++i) {
      T* c = C + i * ldc;
      if (accumulate) {
        store(c, load(c) + acc[i][0]);
        store(c + V, load(c + V) + acc[i][1]);
      } else {
        store(c, acc[i][0]);
        store(c + V, acc[i][1]);
      }
    }
    return;
  }
  alignas(64) T tile[MR][NR];
  for (index_t i = 0; i < MR; ++i) {
    store(tile[i], acc[i][0]);
    store(tile[i] + V, acc[i][1]);
  }
  for (index_t i = 0; i < mr; ++i) {
    T* c = C + i * ldc;
    for (index_t j = 0; j < nr; ++j) c[j] = accumulate ? c[j] + tile[i][j] : tile[i][j];
  }
}

// Elements of packing space gemm_block needs for an M x N x K block: packed B, then packed A.
template <class T>
index_t pack_space(index_t M, index_t N, index_t K) {
  using Bk = Blocking<T>;
  const index_t kc_max = min_index(K, Bk::KC);
  return kc_max * (round_up(min_index(N, Bk::NC), Bk::NR) + round_up(min_index(M, Bk::MC), Bk::MR));
}

// Single-threaded GEMM on one block of C (see gemm()), packing into `space` (pack_space
// elements, uninitialised: pack_* writes every element read).
template <class T>
void gemm_block(Trans ta, Trans tb, index_t M, index_t N, index_t K, const T* A, index_t lda,
                const T* B, index_t ldb, T beta, T* C, index_t ldc, T* space) {
  using Bk = Blocking<T>;
  const index_t kc_max = min_index(K, Bk::KC);
  T* const bpack_p = space;
  T* const apack_p = space + kc_max * round_up(min_index(N, Bk::NC), Bk::NR);
  for (index_t j0 = 0; j0 < N; j0 += Bk::NC) {
    const index_t nc = min_index(Bk::NC, N - j0);
    for (index_t k0 = 0; k0 < K; k0 += Bk::KC) {
      const index_t kc = min_index(Bk::KC, K - k0);
      const bool accumulate = k0 > 0 || beta != T(0);
      pack_b(bpack_p, B, ldb, tb, k0, kc, j0, nc);
      for (index_t i0 = 0; i0 < M; i0 += Bk::MC) {
        // At most ~0.1 GFLOP between checks; a cancelled call's C is discarded (threadpool.hpp).
        if (team_cancel_point()) return;
        const index_t mc = min_index(Bk::MC, M - i0);
        pack_a(apack_p, A, lda, ta, i0, mc, k0, kc);
        for (index_t jp = 0; jp < nc; jp += Bk::NR) {
          const T* bp = bpack_p + (jp / Bk::NR) * kc * Bk::NR;
          for (index_t ip = 0; ip < mc; ip += Bk::MR) {
            const T* ap = apack_p + (ip / Bk::MR) * kc * Bk::MR;
            micro_kernel(kc, ap, bp, C + (i0 + ip) * ldc + j0 + jp, ldc,
                         min_index(Bk::MR, mc - ip), min_index(Bk::NR, nc - jp), accumulate);
          }
        }
      }
    }
  }
}

// A few rows of C straight from unpacked B (B not transposed): packing B would cost as
// much as the product itself. Each C element sums over k in order, as the packed path does.
template <class T>
void gemm_few_rows(Trans ta, index_t M, index_t N, index_t K, const T* A, index_t lda,
                   const T* B, index_t ldb, T beta, T* C, index_t ldc) {
  constexpr index_t V = lanes<T>(), NV = 8;  // 8 independent accumulators hide FMA latency
  static_assert(NV == 8, "few_rows_task splits columns in blocks of NV vectors");
  for (index_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    index_t j = 0;
    for (; j + NV * V <= N; j += NV * V) {
      Vec<T> acc[NV];
#pragma GCC unroll 8
      for (index_t v = 0; v < NV; ++v) acc[v] = beta != T(0) ? load(c + j + v * V) : Vec<T>{};
      for (index_t k = 0; k < K; ++k) {
        const Vec<T> a = broadcast(op_at(A, lda, ta, i, k));
        const T* b = B + k * ldb + j;
#pragma GCC unroll 8
        for (index_t v = 0; v < NV; ++v) acc[v] += a * load(b + v * V);
      }
#pragma GCC unroll 8
      for (index_t v = 0; v < NV; ++v) store(c + j + v * V, acc[v]);
    }
    for (; j + V <= N; j += V) {
      Vec<T> acc = beta != T(0) ? load(c + j) : Vec<T>{};
      for (index_t k = 0; k < K; ++k) acc += broadcast(op_at(A, lda, ta, i, k)) * load(B + k * ldb + j);
      store(c + j, acc);
    }
    if (j < N) {
      // The last N - j < V columns as one zero-padded vector: the same vector multiply-adds
      // as the packed path's zero-padded panels (a scalar loop may round differently, e.g.
      // without FMA contraction), so a single row gives the bits of the same row in a batch.
      const index_t n = N - j;
      alignas(64) T tail[V] = {};
      if (beta != T(0)) copy_n(c + j, n, tail);
      Vec<T> acc = load(tail);
      for (index_t k = 0; k < K; ++k) {
        copy_n(B + k * ldb + j, n, tail);
        acc += broadcast(op_at(A, lda, ta, i, k)) * load(tail);
      }
      store(tail, acc);
      copy_n(static_cast<const T*>(tail), n, c + j);
    }
  }
}

template <class T>
struct GemmArgs {  // one gemm() call's arguments
  Trans ta, tb;
  index_t M, N, K;
  const T* A;
  index_t lda;
  const T* B;
  index_t ldb;
  T beta;
  T* C;
  index_t ldc;
};

constexpr index_t kFewRowsBlock = 8;  // vectors per column block: gemm_few_rows's NV

// gemm_few_rows over the team: thread tid takes a contiguous range of whole NV-vector column
// blocks (the remainder columns go to the last thread). Each column is computed as in the
// single-threaded call, so results do not depend on the split.
template <class T>
void few_rows_task(void* ctx, int tid, int nthreads) {
  const GemmArgs<T>& j = *static_cast<const GemmArgs<T>*>(ctx);
  const index_t block = kFewRowsBlock * lanes<T>();
  const index_t blocks = j.N / block;
  const index_t lo = blocks * tid / nthreads * block;
  const index_t hi = tid + 1 == nthreads ? j.N : blocks * (tid + 1) / nthreads * block;
  if (lo >= hi) return;
  gemm_few_rows(j.ta, j.M, hi - lo, j.K, j.A, j.lda, j.B + lo, j.ldb, j.beta, j.C + lo, j.ldc);
}

template <class T>
struct GemmJob {
  GemmArgs<T> g;
  bool split_columns;  // else split rows
  T* space;            // per-thread packing space, space_per_thread elements each
  index_t space_per_thread;
};

// Thread tid's share of the output: a contiguous range of whole NR columns or MR rows.
template <class T>
void gemm_task(void* ctx, int tid, int nthreads) {
  const GemmJob<T>& job = *static_cast<const GemmJob<T>*>(ctx);
  const GemmArgs<T>& j = job.g;
  using Bk = Blocking<T>;
  const index_t unit = job.split_columns ? Bk::NR : Bk::MR;
  const index_t extent = job.split_columns ? j.N : j.M;
  const index_t units = div_up(extent, unit);
  const index_t u0 = units * tid / nthreads, u1 = units * (tid + 1) / nthreads;
  const index_t lo = u0 * unit, hi = min_index(u1 * unit, extent);
  if (lo >= hi) return;
  T* space = job.space + static_cast<index_t>(tid) * job.space_per_thread;
  if (job.split_columns) {
    const T* B = j.tb == Trans::No ? j.B + lo : j.B + lo * j.ldb;
    gemm_block(j.ta, j.tb, j.M, hi - lo, j.K, j.A, j.lda, B, j.ldb, j.beta, j.C + lo, j.ldc,
               space);
  } else {
    const T* A = j.ta == Trans::No ? j.A + lo * j.lda : j.A + lo;
    gemm_block(j.ta, j.tb, hi - lo, j.N, j.K, A, j.lda, j.B, j.ldb, j.beta, j.C + lo * j.ldc,
               j.ldc, space);
  }
}

}  // namespace

template <class T>
void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, const T* A, index_t lda,
          const T* B, index_t ldb, T beta, T* C, index_t ldc) {
  using Bk = Blocking<T>;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (beta == T(0)) {
      for (index_t i = 0; i < M; ++i) fill_n(C + i * ldc, N, T(0));
    }
    return;
  }
  if (M < Blocking<T>::MR && tb == Trans::No) {
    // Streaming B once is the whole cost (e.g. a single step's input projection, B = 1):
    // split its columns when B is large enough (>= ~1 MFLOP) that the other cores' share of
    // the memory traffic repays waking them.
    const index_t blocks = N / (kFewRowsBlock * lanes<T>());
    const double flops = 2.0 * static_cast<double>(M) * N * K;
    const int nthreads = flops < 1e6 ? 1 : static_cast<int>(min_index(get_num_threads(), blocks));
    if (nthreads <= 1) {
      gemm_few_rows(ta, M, N, K, A, lda, B, ldb, beta, C, ldc);
      return;
    }
    GemmArgs<T> args{ta, Trans::No, M, N, K, A, lda, B, ldb, beta, C, ldc};
    team_run(nthreads, &few_rows_task<T>, &args);
    return;
  }
  // Below ~20 MFLOP (~130 us on one core) a second thread costs more than it saves: waking a
  // sleeping worker takes tens of microseconds, and it packs its own panels.
  const double flops = 2.0 * static_cast<double>(M) * N * K;
  const bool split_columns = N / Bk::NR >= M / Bk::MR;
  const index_t units = split_columns ? div_up(N, Bk::NR) : div_up(M, Bk::MR);
  int nthreads = flops < 2e7 ? 1 : get_num_threads();
  if (nthreads > units) nthreads = static_cast<int>(units);
  // Packing space for every thread, allocated here: nothing may throw inside the team.
  const index_t per_thread = pack_space<T>(M, N, K);
  Buffer<T> space(per_thread * nthreads);
  if (nthreads <= 1) {
    gemm_block(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, space.get());
    return;
  }
  GemmJob<T> job{{ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc}, split_columns, space.get(),
                 per_thread};
  team_run(nthreads, &gemm_task<T>, &job);
}

template <class T>
void column_sums(T* out, const T* A, index_t rows, index_t cols, index_t lda) {
  constexpr index_t kLeafRows = 32;
  if (rows <= kLeafRows) {
    fill_n(out, cols, T(0));
    for (index_t r = 0; r < rows; ++r) {
      const T* row = A + r * lda;
      for (index_t c = 0; c < cols; ++c) out[c] += row[c];
    }
    return;
  }
  // Split at a multiple of the leaf size so the tree shape depends only on `rows`.
  const index_t half = round_up(rows / 2, kLeafRows);
  Buffer<T> upper(cols);
  column_sums(out, A, half, cols, lda);
  column_sums(upper.get(), A + half * lda, rows - half, cols, lda);
  for (index_t c = 0; c < cols; ++c) out[c] += upper[c];
}

template void gemm<float>(Trans, Trans, index_t, index_t, index_t, const float*, index_t,
                          const float*, index_t, float, float*, index_t);
template void gemm<double>(Trans, Trans, index_t, index_t, index_t, const double*, index_t,
                           const double*, index_t, double, double*, index_t);
template <class T>
void gemm_rows_in_place(index_t M, index_t N, index_t K, const T* A, index_t lda, const T* B,
                        index_t ldb, T* C, index_t ldc) {
  gemm_few_rows(Trans::No, M, N, K, A, lda, B, ldb, T(0), C, ldc);
}

template void gemm_rows_in_place<float>(index_t, index_t, index_t, const float*, index_t,
                                        const float*, index_t, float*, index_t);
template void gemm_rows_in_place<double>(index_t, index_t, index_t, const double*, index_t,
                                         const double*, index_t, double*, index_t);
template void column_sums<float>(float*, const float*, index_t, index_t, index_t);
template void column_sums<double>(double*, const double*, index_t, index_t, index_t);

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
