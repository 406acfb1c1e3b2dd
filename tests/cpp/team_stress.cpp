// Sanitizer driver for the C++ kernels and the thread runtime without Python
// (ThreadSanitizer cannot run inside CPython here). Built with -DRNNKIT_BUILD_CPP_TESTS=ON;
// tools/tsan.sh builds it with -fsanitize=thread and runs it.
//
// For every ISA this CPU runs, every cell (SimpleRNN, LSTM, GRU reset_after / reset_before,
// LSTMP with P < H and P > H: its projection phase adds a barrier a step)
// runs forward + backward on problems large enough that the time loops and the GEMMs really
// start the team (above the thresholds of loop_threads() in sequence.hpp and gemm()):
//   1. reference: one thread;
//   2. sequential: 2 and 3 threads, bitwise identical to the reference;
//   3. stress: kCallers caller threads at once (one owns the team, the others fall back to
//      running alone), while the main thread keeps switching set_num_threads between 1, 2
//      and 3 and an interrupt poll cancels every kCancelEvery-th poll (polled at every
//      barrier). Every call that was not cancelled must match the reference bitwise;
//      cancelled ones must leave everything usable.
//   --checksums prints a checksum per case (to compare builds for other architectures).
#include <atomic>
#include <chrono>
#if defined(__linux__)
#include <dirent.h>
#endif
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "rnnkit/cells.hpp"
#include "rnnkit/dispatch.hpp"
#include "rnnkit/threadpool.hpp"

using namespace rnnkit;

namespace {

constexpr int kCallers = 3;
constexpr int kRoundsPerCaller = 2;   // forward+backward of every case, per caller
constexpr unsigned kCancelEvery = 97;  // one poll in 97 cancels: ~1 call in 3 (~30 polls a call)

struct Case {
  Cell cell;
  bool reset_after;
  const char* name;
  index_t H;
  index_t P;  // projected cells (LSTMP): the width of h; 0 for the others
};

// B * H * G * H is large enough for 3 threads in the time loops (~2.3 MFLOP a step) and the
// input projection and weight-gradient GEMMs exceed gemm()'s 2e7-FLOP threshold (LSTM, GRU).
constexpr index_t kB = 64, kT = 8, kI = 96;
const Case kCases[] = {{Cell::SimpleRNN, true, "simple_rnn", 150, 0},
                       {Cell::LSTM, true, "lstm", 70, 0},  // time loops split by rows
                       {Cell::LSTM, true, "lstm_wide", 300, 0},  // panel > 512 KiB: by units
                       {Cell::GRU, true, "gru", 80, 0},
                       {Cell::GRU, false, "gru_reset_before", 80, 0},
                       {Cell::LSTMP, true, "lstmp", 70, 40},
                       {Cell::LSTMP, true, "lstmp_wide", 40, 72}};

struct Problem {
  Dims d;
  SeqOptions opt;
  std::vector<double> x, k, r, b, dy, pk;
  std::vector<std::uint8_t> mask;
};

Problem make_problem(const Case& c) {
  Problem p;
  const int G = gate_count(c.cell);
  p.d = Dims{kB, kT, kI, c.H, G, c.P};
  p.opt.reset_after = c.reset_after;
  std::mt19937 gen(7);
  std::uniform_real_distribution<double> u(-0.3, 0.3);
  auto rnd = [&](index_t n) {
    std::vector<double> v(static_cast<std::size_t>(n));
    for (auto& e : v) e = u(gen);
    return v;
  };
  const index_t GH = G * c.H, rows = kB * kT;
  const index_t bias_n = bias_rows(c.cell, p.opt) * GH;
  p.x = rnd(rows * kI);
  p.k = rnd(kI * GH);
  p.r = rnd(p.d.S() * GH);
  p.b = rnd(bias_n);
  p.dy = rnd(rows * p.d.S());
  p.pk = rnd(c.H * c.P);
  p.mask.resize(static_cast<std::size_t>(rows));
  for (index_t i = 0; i < rows; ++i) p.mask[i] = (i % 5) != 1;
  return p;
}

struct Result {
  std::vector<double> y, h, c, dx, dk, dr, db, dh0, dc0, dp;
  bool cancelled = false;
};

// Forward + backward on whatever team the runtime gives this thread now.
Result run(const Case& cs, const Problem& p) {
  const Dims& d = p.d;
  const Cell cell = cs.cell;
  const index_t GH = d.GH(), rows = d.rows(), H = d.H, B = d.B, I = d.I, S = d.S();
  SeqInputs<double> in;
  in.x = p.x.data();
  in.kernel = p.k.data();
  in.recurrent_kernel = p.r.data();
  in.bias = p.b.data();
  in.mask = p.mask.data();
  const CellInfo& info = cell_info(cell);
  if (info.projected) in.projection_kernel = p.pk.data();

  Result res;
  res.y.resize(rows * S);
  res.h.resize(B * S);
  res.c.resize(B * H);
  std::vector<double> gates(rows * GH), h_prev(rows * S), c_prev(rows * H), aux(rows * H),
      m(rows * H);
  TrainCache<double> tc{gates.data(), h_prev.data(),
                        info.has_cache_array(kCPrevArray) ? c_prev.data() : nullptr,
                        info.has_cache_array(kAuxArray) ? aux.data() : nullptr,
                        info.has_cache_array(kMArray) ? m.data() : nullptr};
  std::vector<double> work(forward_workspace_size(cell, d, p.opt));
  const CellKernels<double>& kern = kernels_for<double>(active_kernels());
  const SeqOutputs<double> out{res.y.data(), res.h.data(),
                               info.states == 2 ? res.c.data() : nullptr};
  kern.forward_of(cell)(out, d, p.opt, in, &tc, work.data());
  res.cancelled = kernel_call_cancelled();
  res.dx.resize(rows * I);
  res.dk.resize(I * GH);
  res.dr.resize(S * GH);
  res.db.resize(p.b.size());
  res.dh0.resize(B * S);
  res.dc0.resize(B * H);
  res.dp.resize(H * d.P);
  SeqGrads<double> g{res.dx.data(), res.dk.data(), res.dr.data(), res.db.data(), res.dh0.data(),
                     info.states == 2 ? res.dc0.data() : nullptr,
                     info.projected ? res.dp.data() : nullptr};
  SeqUpstream<double> up{p.dy.data(), nullptr, nullptr};
  std::vector<double> bwork(backward_workspace_size(cell, d, p.opt));
  kern.backward_of(cell)(g, d, p.opt, in, tc, up, bwork.data());
  res.cancelled = res.cancelled || kernel_call_cancelled();
  return res;
}

bool same(const Result& a, const Result& b) {
  auto eq = [](const std::vector<double>& p, const std::vector<double>& q) {
    return p.size() == q.size() && std::memcmp(p.data(), q.data(), p.size() * sizeof(double)) == 0;
  };
  return eq(a.y, b.y) && eq(a.h, b.h) && eq(a.c, b.c) && eq(a.dx, b.dx) && eq(a.dk, b.dk) &&
         eq(a.dr, b.dr) && eq(a.db, b.db) && eq(a.dh0, b.dh0) && eq(a.dc0, b.dc0) &&
         eq(a.dp, b.dp);
}

// Sum of |v| over every result: printed with --checksums so builds for other architectures
// (e.g. aarch64 under qemu) can be compared with this one.
double checksum(const Result& r) {
  double s = 0;
  for (const auto* v : {&r.y, &r.h, &r.c, &r.dx, &r.dk, &r.dr, &r.db, &r.dh0, &r.dc0, &r.dp}) {
    for (double e : *v) s += std::fabs(e);
  }
  return s;
}

std::atomic<unsigned> g_polls{0};
std::atomic<bool> g_cancelling{false};

// The stand-in for Python's signal check: cancels every kCancelEvery-th poll while enabled.
bool cancel_some() {
  if (!g_cancelling.load(std::memory_order_relaxed)) return false;
  return g_polls.fetch_add(1, std::memory_order_relaxed) % kCancelEvery == kCancelEvery - 1;
}

// Threads of this process (-1 where unknown): proves the team really started.
int process_threads() {
#if defined(__linux__)
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  int n = 0;
  while (const dirent* e = readdir(dir)) n += e->d_name[0] != '.';
  closedir(dir);
  return n;
#else
  return -1;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  const bool print = argc > 1 && std::strcmp(argv[1], "--checksums") == 0;
  const auto start = std::chrono::steady_clock::now();
  set_interrupt_poll(&cancel_some, 0);  // poll at every barrier and GEMM panel
  const std::size_t ncases = sizeof(kCases) / sizeof(kCases[0]);
  std::vector<Problem> problems;
  for (const Case& c : kCases) problems.push_back(make_problem(c));
  int failures = 0;
  long cancelled = 0, checked = 0;

  for (const std::string& isa : supported_isas()) {
    select_isa(isa);
    // 1 + 2: sequential, no cancellation.
    g_cancelling.store(false);
    std::vector<Result> want;
    for (std::size_t i = 0; i < ncases; ++i) {
      set_num_threads(1);
      want.push_back(run(kCases[i], problems[i]));
      if (print) std::printf("%s %s %.15g\n", isa.c_str(), kCases[i].name, checksum(want[i]));
      for (int threads : {2, 3}) {
        set_num_threads(threads);
        if (!same(want[i], run(kCases[i], problems[i]))) {
          std::printf("MISMATCH %s %s threads=%d\n", isa.c_str(), kCases[i].name, threads);
          ++failures;
        }
      }
    }

    const int threads_now = process_threads();
    if (threads_now >= 0 && threads_now < 3) {
      std::printf("the team did not start (%d threads)\n", threads_now);
      ++failures;
    }

    // 3: concurrent callers, changing team size, cancelled calls.
    g_cancelling.store(true);
    std::atomic<int> mismatches{0}, running{kCallers};
    std::atomic<long> n_cancelled{0}, n_checked{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < kCallers; ++t) {
      callers.emplace_back([&, t] {
        for (int round = 0; round < kRoundsPerCaller; ++round) {
          for (std::size_t k = 0; k < ncases; ++k) {
            const std::size_t i = (k + static_cast<std::size_t>(t)) % ncases;
            const Result got = run(kCases[i], problems[i]);
            if (got.cancelled) {
              ++n_cancelled;
            } else {
              ++n_checked;
              if (!same(got, want[i])) {
                std::printf("MISMATCH (stress) %s %s caller=%d\n", isa.c_str(), kCases[i].name, t);
                ++mismatches;
              }
            }
          }
        }
        --running;
      });
    }
    for (unsigned step = 0; running.load() > 0; ++step) {
      set_num_threads(1 + static_cast<int>(step % 3));
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
    for (auto& th : callers) th.join();
    failures += mismatches.load();
    cancelled += n_cancelled.load();
    checked += n_checked.load();

    // Nothing left over from the cancelled calls: the team still gives exact results.
    g_cancelling.store(false);
    for (std::size_t i = 0; i < ncases; ++i) {
      set_num_threads(3);
      const Result again = run(kCases[i], problems[i]);
      if (again.cancelled || !same(again, want[i])) {
        std::printf("MISMATCH (after stress) %s %s\n", isa.c_str(), kCases[i].name);
        ++failures;
      }
    }
  }
  set_num_threads(0);
  set_interrupt_poll(nullptr);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("stress: %ld calls checked, %ld cancelled, %.1f s\n", checked, cancelled, secs);
  if (cancelled == 0 || checked == 0) {
    std::printf("stress did not exercise both cancelled and completed calls\n");
    ++failures;
  }
  std::printf(failures ? "FAILED\n" : "ok\n");
  return failures ? 1 : 0;
}
