// The fused optimizer updates of rnnkit/optim.def, compiled once per ISA (RNNKIT_ISA_NS)
// with -ffp-contract=off and without fast-math: every element goes through the same IEEE
// operations, in the same order and precision, as the NumPy formulas in
// python/rnnkit/optimizers/, so the results are bitwise equal to them. The loops are plain
// scalar code over __restrict pointers: the compiler vectorises them for the ISA (add, mul,
// div and sqrt are correctly rounded in SIMD as in scalar code).
#include "rnnkit/isa.hpp"
#include "rnnkit/optim.hpp"
#include "rnnkit/threadpool.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

namespace {

// The coefficients of one call, by value (scalars in registers inside the loops).
template <class T>
struct Coefs {
  T c[kOptimMaxCoefs];
};

inline float sqrt_of(float x) { return __builtin_sqrtf(x); }
inline double sqrt_of(double x) { return __builtin_sqrt(x); }
inline float abs_of(float x) { return __builtin_fabsf(x); }
inline double abs_of(double x) { return __builtin_fabs(x); }
// np.maximum: the second operand when equal (as NumPy's SIMD loops), NaN from either side.
template <class T>
inline T np_maximum(T a, T b) { return (a > b || a != a) ? a : b; }
// np.sign: +-1, +0 for +-0, NaN for NaN.
template <class T>
inline T np_sign(T x) { return x > T(0) ? T(1) : (x < T(0) ? T(-1) : (x == T(0) ? T(0) : x)); }

// One struct per kind: elem(k, w, g, s0, s1, s2) updates one element (optim.def formulas;
// s0..s2 are the kind's slots in optim.def order, unused ones never touched).
template <OptimKind K>
struct Kind;

template <>
struct Kind<OptimKind::SGD> {
  template <class T>
  static inline void elem(const Coefs<T>& k, T& w, T g, T&, T&, T&) { w = w - g * k.c[0]; }
};

template <bool Nesterov>
struct SgdMomentum {
  template <class T>
  static inline void elem(const Coefs<T>& k, T& w, T g, T& m, T&, T&) {
    m = m * k.c[0] - g * k.c[1];
    w = Nesterov ? w + (m * k.c[0] - g * k.c[1]) : w + m;
  }
};
template <>
struct Kind<OptimKind::SGDMomentum> : SgdMomentum<false> {};
template <>
struct Kind<OptimKind::SGDNesterov> : SgdMomentum<true> {};

template <bool AMSGrad>
struct AdamElem {
  template <class T>
  static inline void elem(const Coefs<T>& k, T& w, T g, T& m, T& v, T& vhat) {
    m = m + (g - m) * k.c[1];
    v = v + (g * g - v) * k.c[2];
    T vu = v;
    if (AMSGrad) {
      vhat = np_maximum(vhat, v);
      vu = vhat;
    }
    w = w - (m * k.c[0]) / (sqrt_of(vu) + k.c[3]);
  }
};
template <>
struct Kind<OptimKind::Adam> : AdamElem<false> {};
template <>
struct Kind<OptimKind::AdamAMSGrad> : AdamElem<true> {};

// RMSprop slots: velocity, then momentum (with momentum), then average_gradient (centered).
template <bool Momentum, bool Centered>
struct RMSpropElem {
  template <class T>
  static inline void elem(const Coefs<T>& k, T& w, T g, T& v, T& s1, T& s2) {
    const T rho = k.c[0], omr = k.c[1], eps = k.c[2], lr = k.c[3];
    v = rho * v + omr * (g * g);
    T den;
    if (Centered) {
      T& a = Momentum ? s2 : s1;
      a = rho * a + omr * g;
      den = (v - a * a) + eps;
    } else {
      den = v + eps;
    }
    const T inc = (lr * g) / sqrt_of(den);
    if (Momentum) {
      s1 = k.c[4] * s1 + inc;
      w = w - s1;
    } else {
      w = w - inc;
    }
  }
};
template <>
struct Kind<OptimKind::RMSprop> : RMSpropElem<false, false> {};
template <>
struct Kind<OptimKind::RMSpropMomentum> : RMSpropElem<true, false> {};
template <>
struct Kind<OptimKind::RMSpropCentered> : RMSpropElem<false, true> {};
template <>
struct Kind<OptimKind::RMSpropCenteredMomentum> : RMSpropElem<true, true> {};

template <>
struct Kind<OptimKind::Adagrad> {
  template <class T>
  static inline void elem(const Coefs<T>& k, T& w, T g, T& acc, T&, T&) {
    acc = acc + g * g;
    w = w - (k.c[0] * g) / sqrt_of(acc + k.c[1]);
  }
};

template <>
struct Kind<OptimKind::Adamax> {
  template <class T>
  static inline void elem(const Coefs<T>& k, T& w, T g, T& m, T& u, T&) {
    m = m + (g - m) * k.c[0];
    u = np_maximum(k.c[1] * u, abs_of(g));
    w = w - (k.c[3] * m) / (k.c[4] * (u + k.c[2]));
  }
};

template <>
struct Kind<OptimKind::Nadam> {
  template <class T>
  static inline void elem(const Coefs<T>& k, T& w, T g, T& m, T& v, T&) {
    m = m + (g - m) * k.c[0];
    v = v + (g * g - v) * k.c[1];
    const T m_hat = (k.c[2] * m) / k.c[3] + (k.c[4] * g) / k.c[5];
    const T v_hat = v / k.c[6];
    w = w - (m_hat * k.c[7]) / (sqrt_of(v_hat) + k.c[8]);
  }
};

template <>
struct Kind<OptimKind::Lion> {
  template <class T>
  static inline void elem(const Coefs<T>& k, T& w, T g, T& m, T&, T&) {
    w = w - k.c[4] * np_sign(m * k.c[0] + g * k.c[1]);
    m = m * k.c[2] + g * k.c[3];
  }
};

template <>
struct Kind<OptimKind::Adadelta> {
  template <class T>
  static inline void elem(const Coefs<T>& k, T& w, T g, T& acc_g, T& acc_dx, T&) {
    const T rho = k.c[0], omr = k.c[1], eps = k.c[2];
    acc_g = rho * acc_g + omr * (g * g);
    const T d = -((sqrt_of(acc_dx + eps) * g) / sqrt_of(acc_g + eps));
    acc_dx = rho * acc_dx + omr * (d * d);
    w = w + k.c[3] * d;
  }
};

// Elements [off, off + len) of w and the slots, gradient gp[0, len).
template <OptimKind K, bool Decay, class T>
void span(const OptimArgs<T>& a, const Coefs<T> k, index_t off, index_t len,
          const T* __restrict gp) {
  T* __restrict w = a.w + off;
  // Unused slots point at w: never accessed.
  T* __restrict s0 = (a.slot[0] ? a.slot[0] : a.w) + off;
  T* __restrict s1 = (a.slot[1] ? a.slot[1] : a.w) + off;
  T* __restrict s2 = (a.slot[2] ? a.slot[2] : a.w) + off;
  const T wd = a.wd, wd_lr = a.wd_lr;
  for (index_t i = 0; i < len; ++i) {
    T wi = w[i];
    if (Decay) wi = wi - (wi * wd) * wd_lr;
    Kind<K>::elem(k, wi, gp[i], s0[i], s1[i], s2[i]);
    w[i] = wi;
  }
}

// First index of the increasing rows[0, n) that is >= r.
index_t lower_row(const std::int64_t* rows, index_t n, index_t r) {
  index_t lo = 0, hi = n;
  while (lo < hi) {
    const index_t mid = lo + (hi - lo) / 2;
    if (rows[mid] < r) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// A zero gradient for rows without one.
constexpr index_t kZeroLen = 1024;
alignas(64) constexpr float kZerosF[kZeroLen] = {};
alignas(64) constexpr double kZerosD[kZeroLen] = {};
inline const float* zeros_of(float) { return kZerosF; }
inline const double* zeros_of(double) { return kZerosD; }

// Work of one team run: [0, units) split evenly, units being elements (dense), rows
// (row-sparse, dense semantics) or gradient rows (rows_only).
enum class Mode { Dense, Rows, RowsOnly };

template <class T>
struct Job {
  const OptimArgs<T>* a;
  Mode mode;
  index_t units;
  void (*span_fn)(const OptimArgs<T>&, const Coefs<T>, index_t, index_t, const T*);
};

// Elements per thread below which splitting costs more than it saves.
constexpr index_t kMinElementsPerThread = index_t(1) << 15;
// Dense chunks start at multiples of 64 bytes (whole cache lines per thread).
template <class T>
constexpr index_t kChunkAlign = 64 / sizeof(T);

template <class T>
void run_part(void* ctx, int tid, int nthreads) {
  const Job<T>& job = *static_cast<const Job<T>*>(ctx);
  const OptimArgs<T>& a = *job.a;
  Coefs<T> k;
  for (int i = 0; i < kOptimMaxCoefs; ++i) k.c[i] = a.coef[i];
  index_t lo = job.units * tid / nthreads, hi = job.units * (tid + 1) / nthreads;
  if (job.mode == Mode::Dense) {
    lo = tid == 0 ? 0 : lo / kChunkAlign<T> * kChunkAlign<T>;
    hi = tid == nthreads - 1 ? job.units : hi / kChunkAlign<T> * kChunkAlign<T>;
    if (hi > lo) job.span_fn(a, k, lo, hi - lo, a.g + lo);
    return;
  }
  const index_t D = a.row_len;
  if (job.mode == Mode::RowsOnly) {
    for (index_t j = lo; j < hi; ++j) job.span_fn(a, k, a.rows[j] * D, D, a.g + j * D);
    return;
  }
  // Dense semantics: rows without a gradient row get a zero gradient; a run of them is
  // one contiguous range of elements, done kZeroLen elements at a time.
  index_t j = lower_row(a.rows, a.nrows, lo);
  index_t r = lo;
  while (r < hi) {
    const index_t next = (j < a.nrows && a.rows[j] < hi) ? a.rows[j] : hi;
    for (index_t e = r * D, end = next * D; e < end; e += kZeroLen) {
      job.span_fn(a, k, e, end - e < kZeroLen ? end - e : kZeroLen, zeros_of(T(0)));
    }
    if (next == hi) break;
    job.span_fn(a, k, next * D, D, a.g + j * D);
    ++j;
    r = next + 1;
  }
}

template <OptimKind K, class T>
void update_kind(const OptimArgs<T>& a) {
  Job<T> job{&a, Mode::Dense, a.n, a.decay ? &span<K, true, T> : &span<K, false, T>};
  index_t elements_per_unit = 1;
  if (a.rows != nullptr) {
    // rows_only only where it equals the dense update bitwise (optim.def).
    const bool rows_only = optim_info(K).rows_only && !a.decay && a.coef[0] > T(0);
    job.mode = rows_only ? Mode::RowsOnly : Mode::Rows;
    job.units = rows_only ? a.nrows : (a.row_len > 0 ? a.n / a.row_len : 0);
    elements_per_unit = a.row_len > 0 ? a.row_len : 1;
  }
  const index_t work = job.units * elements_per_unit;
  index_t want = work / kMinElementsPerThread;
  const index_t cap = get_num_threads();
  if (want > cap) want = cap;
  if (want > job.units) want = job.units;
  if (want <= 1) {
    if (job.units > 0) run_part<T>(&job, 0, 1);
    return;
  }
  team_run(static_cast<int>(want), &run_part<T>, &job);
}

template <class T>
void update(const OptimArgs<T>& a) {
  switch (a.kind) {
#define RNNKIT_OPTIM(Enum, name, slots, coefs, rows_only) \
  case OptimKind::Enum:                                  \
    update_kind<OptimKind::Enum, T>(a);                  \
    return;
#include "rnnkit/optim.def"
#undef RNNKIT_OPTIM
  }
}

}  // namespace

const OptimTable& optim_table() {
  static const OptimTable table{RNNKIT_STRINGIFY(RNNKIT_ISA_NS), &update<float>,
                                &update<double>};
  return table;
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
