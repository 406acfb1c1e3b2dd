// Thread team with a sense-reversing spin-then-sleep barrier (see threadpool.hpp).
#include "rnnkit/threadpool.hpp"

#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RNNKIT_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define RNNKIT_PAUSE() asm volatile("yield")
#else
#define RNNKIT_PAUSE() ((void)0)
#endif

namespace rnnkit {
namespace {

// Spin budgets in time, not iterations: `pause` takes 10 cycles on some cores and 140 on
// others. A barrier spins ~20 us, then yields the core between checks (another thread of the
// team may be waiting for it when cores are oversubscribed); idle workers spin ~200 us after
// a job (back-to-back calls), then sleep on the condition variable.
constexpr auto kBarrierSpin = std::chrono::microseconds(20);
constexpr auto kIdleSpin = std::chrono::microseconds(200);

int usable_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// Waits until pred() holds: spin with pause for `budget`, then yield the core between checks.
template <class Pred>
void spin_wait(Pred pred, std::chrono::microseconds budget = kBarrierSpin) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  bool spinning = true;
  for (unsigned i = 1; !pred(); ++i) {
    if (spinning) {
      RNNKIT_PAUSE();
      if ((i & 63) == 0 && std::chrono::steady_clock::now() > deadline) spinning = false;
    } else {
      std::this_thread::yield();
    }
  }
}

class Team {
 public:
  static Team& get() {
    static Team* team = new Team();  // never destroyed: workers may outlive static teardown
    return *team;
  }

  void set_limit(int n) { limit_.store(n < 1 ? usable_cores() : n); }
  int limit() const { return limit_.load(); }

  void run(int nthreads, TeamFn fn, void* ctx) {
    const int n = std::max(1, std::min(nthreads, limit()));
    std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
    if (n == 1 || !busy.owns_lock()) {
      SoloScope solo;
      fn(ctx, 0, 1);
      return;
    }
    ensure_workers(n - 1);
    fn_ = fn;
    ctx_ = ctx;
    barrier_count_.store(0);
    finished_.store(0);
    {
      // One atomic word carries the job number and its team size, so a worker that is not
      // in this team can never mix one job's size with another's number.
      std::lock_guard<std::mutex> lock(wake_mutex_);
      const std::uint64_t next = (job_.load() >> 16) + 1;
      job_.store((next << 16) | static_cast<std::uint64_t>(n), std::memory_order_release);
    }
    wake_.notify_all();
    TeamScope scope(this, n);
    fn(ctx, 0, n);
    spin_wait([&] { return finished_.load(std::memory_order_acquire) == n - 1; });
  }

  void barrier() {
    if (tl_team_size_ <= 1) return;
    const bool sense = !tl_sense_;
    tl_sense_ = sense;
    if (barrier_count_.fetch_add(1, std::memory_order_acq_rel) == tl_team_size_ - 1) {
      barrier_count_.store(0, std::memory_order_relaxed);
      barrier_sense_.store(sense, std::memory_order_release);
    } else {
      spin_wait([&] { return barrier_sense_.load(std::memory_order_acquire) == sense; });
    }
  }

 private:
  // Per-thread view of the team it is running in (0 = not in a team run).
  static thread_local int tl_team_size_;
  static thread_local bool tl_sense_;

  struct TeamScope {
    TeamScope(Team* t, int n) {
      tl_team_size_ = n;
      tl_sense_ = t->barrier_sense_.load(std::memory_order_acquire);
    }
    ~TeamScope() { tl_team_size_ = 0; }
  };
  struct SoloScope {
    int saved = tl_team_size_;
    SoloScope() { tl_team_size_ = 1; }
    ~SoloScope() { tl_team_size_ = saved; }
  };

  Team() : limit_(usable_cores()) {}

  void ensure_workers(int count) {
    while (static_cast<int>(workers_.size()) < count) {
      const int tid = static_cast<int>(workers_.size()) + 1;
      // The job number before this run's: the new worker must not mistake the job about to
      // be posted for one it has already done.
      const std::uint64_t before = job_.load(std::memory_order_acquire);
      workers_.emplace_back([this, tid, before] { worker_loop(tid, before); });
      workers_.back().detach();
    }
  }

  void worker_loop(int tid, std::uint64_t seen) {
    for (;;) {
      // Wait for the next job: spin a while (back-to-back calls), then sleep.
      const auto deadline = std::chrono::steady_clock::now() + kIdleSpin;
      for (unsigned i = 1; job_.load(std::memory_order_acquire) == seen; ++i) {
        if ((i & 63) != 0 || std::chrono::steady_clock::now() < deadline) {
          RNNKIT_PAUSE();
          continue;
        }
        std::unique_lock<std::mutex> lock(wake_mutex_);
        wake_.wait(lock, [&] { return job_.load(std::memory_order_acquire) != seen; });
      }
      seen = job_.load(std::memory_order_acquire);
      const int size = static_cast<int>(seen & 0xffff);
      if (tid < size) {
        TeamScope scope(this, size);
        fn_(ctx_, tid, size);
        finished_.fetch_add(1, std::memory_order_acq_rel);
      }
    }
  }

  std::atomic<int> limit_;
  std::mutex run_mutex_;  // one team run at a time
  std::vector<std::thread> workers_;
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::atomic<std::uint64_t> job_{0};  // (job number << 16) | team size
  TeamFn fn_ = nullptr;
  void* ctx_ = nullptr;
  std::atomic<int> finished_{0};
  std::atomic<int> barrier_count_{0};
  std::atomic<bool> barrier_sense_{false};
};

thread_local int Team::tl_team_size_ = 0;
thread_local bool Team::tl_sense_ = false;

}  // namespace

void set_num_threads(int n) { Team::get().set_limit(n); }
int get_num_threads() { return Team::get().limit(); }
void team_run(int nthreads, TeamFn fn, void* ctx) { Team::get().run(nthreads, fn, ctx); }
void team_barrier() { Team::get().barrier(); }

}  // namespace rnnkit
