// Sanitizer driver for the C++ kernels without Python (ThreadSanitizer cannot run inside
// CPython here). Runs every cell forward and backward on 1-3 threads and checks that the
// results are bitwise identical. Build with -DRNNKIT_BUILD_CPP_TESTS=ON and a sanitizer:
//   cmake -B build-tsan -DRNNKIT_BUILD_CPP_TESTS=ON -DCMAKE_CXX_FLAGS=-fsanitize=thread
//         -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread  (one line)
//   cmake --build build-tsan
//   ./build-tsan/rnnkit_team_stress
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "rnnkit/cells.hpp"
#include "rnnkit/dispatch.hpp"
#include "rnnkit/threadpool.hpp"

using namespace rnnkit;

namespace {

struct Result {
  std::vector<double> y, h, c, dx, dk, dr, db, dh0, dc0;
};

Result run(Cell cell, bool reset_after, int threads) {
  set_num_threads(threads);
  const index_t B = 13, T = 12, I = 50, H = 70;
  const int G = gate_count(cell);
  Dims d{B, T, I, H, G};
  SeqOptions opt;
  opt.reset_after = reset_after;
  std::mt19937 gen(7);
  std::uniform_real_distribution<double> u(-0.3, 0.3);
  auto rnd = [&](index_t n) {
    std::vector<double> v(n);
    for (auto& e : v) e = u(gen);
    return v;
  };
  const index_t GH = G * H, rows = B * T, bias_n = (cell == Cell::GRU && reset_after) ? 2 * GH : GH;
  std::vector<double> x = rnd(rows * I), k = rnd(I * GH), r = rnd(H * GH), b = rnd(bias_n);
  std::vector<double> dy = rnd(rows * H);
  std::vector<std::uint8_t> mask(rows);
  for (index_t i = 0; i < rows; ++i) mask[i] = (i % 5) != 1;
  SeqInputs<double> in;
  in.x = x.data();
  in.kernel = k.data();
  in.recurrent_kernel = r.data();
  in.bias = b.data();
  in.mask = mask.data();

  Result res;
  res.y.resize(rows * H);
  res.h.resize(B * H);
  res.c.resize(B * H);
  std::vector<double> gates(rows * GH), h_prev(rows * H), c_prev(rows * H), aux(rows * H);
  TrainCache<double> tc{gates.data(), h_prev.data(),
                        cache_has_c_prev(cell) ? c_prev.data() : nullptr,
                        cache_has_aux(cell) ? aux.data() : nullptr};
  std::vector<double> work(forward_workspace_size(cell, d, opt));
  const CellKernels<double>& kern = kernels_for<double>(active_kernels());
  switch (cell) {
    case Cell::SimpleRNN: kern.simple_rnn_forward(res.y.data(), res.h.data(), d, opt, in, &tc, work.data()); break;
    case Cell::LSTM: kern.lstm_forward(res.y.data(), res.h.data(), res.c.data(), d, opt, in, &tc, work.data()); break;
    default: kern.gru_forward(res.y.data(), res.h.data(), d, opt, in, &tc, work.data()); break;
  }
  res.dx.resize(rows * I);
  res.dk.resize(I * GH);
  res.dr.resize(H * GH);
  res.db.resize(bias_n);
  res.dh0.resize(B * H);
  res.dc0.resize(B * H);
  SeqGrads<double> g{res.dx.data(), res.dk.data(), res.dr.data(), res.db.data(), res.dh0.data(),
                     cell == Cell::LSTM ? res.dc0.data() : nullptr};
  SeqUpstream<double> up{dy.data(), nullptr, nullptr};
  std::vector<double> bwork(backward_workspace_size(cell, d, opt));
  switch (cell) {
    case Cell::SimpleRNN: kern.simple_rnn_backward(g, d, opt, in, tc, up, bwork.data()); break;
    case Cell::LSTM: kern.lstm_backward(g, d, opt, in, tc, up, bwork.data()); break;
    default: kern.gru_backward(g, d, opt, in, tc, up, bwork.data()); break;
  }
  return res;
}

bool same(const Result& a, const Result& b) {
  auto eq = [](const std::vector<double>& p, const std::vector<double>& q) {
    return p.size() == q.size() && std::memcmp(p.data(), q.data(), p.size() * sizeof(double)) == 0;
  };
  return eq(a.y, b.y) && eq(a.h, b.h) && eq(a.c, b.c) && eq(a.dx, b.dx) && eq(a.dk, b.dk) &&
         eq(a.dr, b.dr) && eq(a.db, b.db) && eq(a.dh0, b.dh0) && eq(a.dc0, b.dc0);
}

}  // namespace

// Sum of |v| over every result: printed with --checksums so builds for other architectures
// (e.g. aarch64 under qemu) can be compared with this one.
double checksum(const Result& r) {
  double s = 0;
  for (const auto* v : {&r.y, &r.h, &r.c, &r.dx, &r.dk, &r.dr, &r.db, &r.dh0, &r.dc0}) {
    for (double e : *v) s += std::fabs(e);
  }
  return s;
}

int main(int argc, char** argv) {
  const bool print = argc > 1 && std::strcmp(argv[1], "--checksums") == 0;
  int failures = 0;
  for (const std::string& isa : supported_isas()) {
    select_isa(isa);
    const struct { Cell cell; bool reset_after; const char* name; } cases[] = {
        {Cell::SimpleRNN, true, "simple_rnn"}, {Cell::LSTM, true, "lstm"},
        {Cell::GRU, true, "gru"}, {Cell::GRU, false, "gru_reset_before"}};
    for (const auto& c : cases) {
      const Result one = run(c.cell, c.reset_after, 1);
      if (print) std::printf("%s %s %.15g\n", isa.c_str(), c.name, checksum(one));
      for (int threads : {2, 3}) {
        if (!same(one, run(c.cell, c.reset_after, threads))) {
          std::printf("MISMATCH %s %s threads=%d\n", isa.c_str(), c.name, threads);
          ++failures;
        }
      }
    }
  }
  std::printf(failures ? "FAILED\n" : "ok\n");
  return failures ? 1 : 0;
}
