// Thread team with a sense-reversing spin-then-sleep barrier (see threadpool.hpp).
#include "rnnkit/threadpool.hpp"

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define RNNKIT_HAVE_ATFORK 1
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <system_error>
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

using Clock = std::chrono::steady_clock;

// Spin budgets in time, not iterations: `pause` takes 10 cycles on some cores and 140 on
// others. A barrier spins ~20 us, then yields the core between checks (another thread of the
// team may be waiting for it when cores are oversubscribed); idle workers spin ~200 us after
// a job (back-to-back calls), then sleep on the condition variable.
constexpr auto kBarrierSpin = std::chrono::microseconds(20);
constexpr auto kIdleSpin = std::chrono::microseconds(200);

int hardware_threads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

// 4x the hardware threads leaves room for deliberate oversubscription (tests run 3 threads on
// 2 cores); the job word (see Team::run_team) holds team sizes below 2^16.
int thread_cap() { return std::min(0xffff, std::max(8, 4 * hardware_threads())); }

int usable_cores() {
#if defined(__linux__)
  // The affinity mask (taskset, cgroups cpusets) may allow fewer cores than the machine has.
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return hardware_threads();
}

int clamp_limit(int n) { return std::min(std::max(1, n < 1 ? usable_cores() : n), thread_cap()); }

// Waits until pred() holds: spin with pause for `budget`, then yield the core between checks.
template <class Pred>
void spin_wait(Pred pred, std::chrono::microseconds budget = kBarrierSpin) {
  const auto deadline = Clock::now() + budget;
  bool spinning = true;
  for (unsigned i = 1; !pred(); ++i) {
    if (spinning) {
      RNNKIT_PAUSE();
      if ((i & 63) == 0 && Clock::now() > deadline) spinning = false;
    } else {
      std::this_thread::yield();
    }
  }
}

std::atomic<InterruptPoll> g_poll{nullptr};
std::atomic<int> g_poll_interval_us{kPollIntervalMs * 1000};

Clock::duration poll_interval() {
  return std::chrono::microseconds(g_poll_interval_us.load(std::memory_order_relaxed));
}

// Per-thread state. Namespace-scope rather than Team members: a forked child replaces the
// Team object, and the forking thread's own state must stay valid.
thread_local int tl_team_size = 0;  // size of the run this thread is in (0: none, 1: solo)
thread_local int tl_tid = 0;        // its index in that run
thread_local bool tl_sense = false;
thread_local bool tl_worker = false;  // a team worker: never polls, never owns a call
// Kernel-call state of a calling thread (see KernelCall).
thread_local int tl_call_depth = 0;
thread_local bool tl_cancelled = false;
thread_local Clock::time_point tl_next_poll{};  // no poll before this
thread_local Clock::time_point tl_last_read{};  // last clock read of this call
thread_local bool tl_clock_started = false;
// Reading the clock costs ~20-40 ns, a few percent of a tiny model's time step: poll points
// read it every tl_stride-th time only, the stride doubling (up to kMaxStride) while the
// reads come much faster than the poll interval and halving when they come slower. The cap
// bounds the extra latency to kMaxStride poll points (time steps or GEMM panels) when a
// call moves from fast points to slow ones.
constexpr unsigned kMaxStride = 4;
thread_local unsigned tl_stride = 1, tl_skip = 0;

void start_poll_clock() {
  tl_cancelled = false;
  tl_clock_started = false;  // started by the first poll point (no clock read per call)
  tl_stride = 1;
  tl_skip = 0;
}

// Asks the poll (at most every poll_interval()) on a calling thread; sticky once true.
inline void poll_interrupt() {
  if (tl_cancelled) return;
  const InterruptPoll poll = g_poll.load(std::memory_order_acquire);
  if (poll == nullptr) return;
  if (tl_skip > 0) {
    --tl_skip;
    return;
  }
  const auto now = Clock::now();
  const auto interval = poll_interval();
  if (!tl_clock_started) {
    tl_clock_started = true;
    tl_last_read = now;
    tl_next_poll = now + interval;
    return;
  }
  const auto since = now - tl_last_read;
  if (since < interval / 8 && tl_stride < kMaxStride) {
    tl_stride *= 2;
  } else if (since > interval / 4 && tl_stride > 1) {
    tl_stride /= 2;
  }
  tl_last_read = now;
  tl_skip = tl_stride - 1;
  if (now < tl_next_poll) return;
  tl_next_poll = now + interval;
  if (poll()) tl_cancelled = true;
}

struct Worker {
  std::thread thread;
  std::atomic<bool> stop{false};
};

class Team {
 public:
  static Team& get() {
    Team* t = instance_.load(std::memory_order_acquire);
    if (t != nullptr) return *t;
    std::call_once(once_, [] {
      // Never destroyed: workers may outlive static teardown.
      instance_.store(new Team(clamp_limit(0)), std::memory_order_release);
#ifdef RNNKIT_HAVE_ATFORK
      pthread_atfork(nullptr, nullptr, &Team::after_fork_in_child);
#endif
    });
    return *instance_.load(std::memory_order_acquire);
  }

  void set_limit(int n) {
    limit_.store(clamp_limit(n));
    shrink_pending_.store(true);
    try_shrink();
  }
  int limit() const { return limit_.load(); }

  void run(int nthreads, TeamFn fn, void* ctx) {
    if (!tl_worker) {
      // Outside a KernelCall scope every run is a call of its own; inside one, a cancelled
      // call skips the rest of its work (e.g. the GEMMs after a cancelled time loop).
      if (tl_call_depth == 0) start_poll_clock();
      if (tl_cancelled) return;
    }
    const int n = std::max(1, std::min(nthreads, limit()));
    if (n == 1) {
      SoloScope solo;
      fn(ctx, 0, 1);
      return;
    }
    std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
    if (!busy.owns_lock()) {
      SoloScope solo;
      fn(ctx, 0, 1);
      return;
    }
    // Fewer threads when the system refuses new ones: every team size gives the same results.
    const int n_run = 1 + ensure_workers(n - 1);
    if (n_run == 1) {
      busy.unlock();
      SoloScope solo;
      fn(ctx, 0, 1);
      return;
    }
    run_team(n_run, fn, ctx);
    shrink_locked();
    busy.unlock();
    // A set_num_threads that found this run in flight left the shrink to us.
    if (shrink_pending_.load()) try_shrink();
  }

  bool barrier() {
    const int size = tl_team_size;
    if (size == 0) return false;  // not in a run
    const bool caller = tl_tid == 0 && !tl_worker;
    if (caller) poll_interrupt();
    if (size == 1) return tl_cancelled;
    // Published before this thread arrives, so the last one to arrive sees it.
    if (caller && tl_cancelled) cancel_request_.store(true, std::memory_order_relaxed);
    const bool sense = !tl_sense;
    tl_sense = sense;
    if (barrier_count_.fetch_add(1, std::memory_order_acq_rel) == size - 1) {
      // The last to arrive decides for everyone: every thread returns the same verdict and
      // leaves its loop at the same step.
      const bool cancelled = cancel_request_.load(std::memory_order_relaxed);
      barrier_cancel_.store(cancelled, std::memory_order_relaxed);
      barrier_count_.store(0, std::memory_order_relaxed);
      barrier_sense_.store(sense, std::memory_order_release);
      return cancelled;
    }
    spin_wait([&] { return barrier_sense_.load(std::memory_order_acquire) == sense; });
    // Not overwritten before every thread has read it: the next barrier's verdict is written
    // only once all of them have arrived there.
    return barrier_cancel_.load(std::memory_order_relaxed);
  }

  // The team part of run(): run_mutex_ held, at least n - 1 workers started.
  void run_team(int n, TeamFn fn, void* ctx) {
    fn_ = fn;
    ctx_ = ctx;
    barrier_count_.store(0);
    finished_.store(0);
    cancel_request_.store(false);
    {
      // One atomic word carries the job number and its team size, so a worker that is not
      // in this team can never mix one job's size with another's number.
      std::lock_guard<std::mutex> lock(wake_mutex_);
      const std::uint64_t next = (job_.load() >> 16) + 1;
      job_.store((next << 16) | static_cast<std::uint64_t>(n), std::memory_order_release);
    }
    wake_.notify_all();
    {
      TeamScope scope(this, 0, n);
      fn(ctx, 0, n);
    }
    spin_wait([&] { return finished_.load(std::memory_order_acquire) == n - 1; });
  }

  bool cancel_point() {
    if (tl_worker) {
      return tl_team_size > 1 && cancel_request_.load(std::memory_order_relaxed);
    }
    if (tl_call_depth == 0 && tl_team_size == 0) return false;  // no call to cancel
    poll_interrupt();
    if (tl_cancelled && tl_team_size > 1) cancel_request_.store(true, std::memory_order_relaxed);
    return tl_cancelled;
  }

 private:
  struct TeamScope {
    int saved_size = tl_team_size, saved_tid = tl_tid;
    TeamScope(Team* t, int tid, int n) {
      tl_team_size = n;
      tl_tid = tid;
      tl_sense = t->barrier_sense_.load(std::memory_order_acquire);
    }
    ~TeamScope() {
      tl_team_size = saved_size;
      tl_tid = saved_tid;
    }
  };
  struct SoloScope {
    int saved_size = tl_team_size, saved_tid = tl_tid;
    SoloScope() {
      tl_team_size = 1;
      tl_tid = 0;
    }
    ~SoloScope() {
      tl_team_size = saved_size;
      tl_tid = saved_tid;
    }
  };

  explicit Team(int limit) : limit_(limit) {}

#ifdef RNNKIT_HAVE_ATFORK
  // Only the forking thread exists in the child: the parent's workers are gone, and the
  // parent's mutexes and condition variable may be held or waited on by threads that do not
  // exist here. Start over with a fresh Team (the next run spawns new workers) and leak the
  // old one on purpose: its std::thread objects must not be destroyed or joined, and its
  // mutexes may be locked. No run is waited for in the parent (no prepare handler): the
  // run's caller may be the main thread, whose interrupt poll needs the GIL that the forking
  // thread holds, and a multi-second kernel must not stall every fork (subprocess too).
  static void after_fork_in_child() {
    Team* old = instance_.load(std::memory_order_relaxed);
    if (old != nullptr) instance_.store(new Team(old->limit()), std::memory_order_relaxed);
  }
#endif

  // Starts workers up to `count`; returns how many there are (fewer if the system refuses
  // a new thread: std::system_error, e.g. a process thread limit).
  int ensure_workers(int count) {
    try {
      grow_workers(count);
    } catch (const std::system_error&) {
    }
    return std::min(count, static_cast<int>(workers_.size()));
  }

  void grow_workers(int count) {
    while (static_cast<int>(workers_.size()) < count) {
      const int tid = static_cast<int>(workers_.size()) + 1;
      // The job number before this run's: the new worker must not mistake the job about to
      // be posted for one it has already done.
      const std::uint64_t before = job_.load(std::memory_order_acquire);
      auto w = std::make_unique<Worker>();
      Worker* self = w.get();
      w->thread = std::thread([this, self, tid, before] { worker_loop(self, tid, before); });
      workers_.push_back(std::move(w));
    }
  }

  // Stops and joins the workers above the limit. Needs run_mutex_ (no run in flight, so no
  // worker is needed by a job it has not picked up yet).
  void shrink_locked() {
    if (!shrink_pending_.exchange(false)) return;
    const std::size_t keep = static_cast<std::size_t>(std::max(0, limit() - 1));
    if (workers_.size() <= keep) return;
    {
      std::lock_guard<std::mutex> lock(wake_mutex_);  // a sleeper cannot miss the stop
      for (std::size_t i = keep; i < workers_.size(); ++i) workers_[i]->stop.store(true);
    }
    wake_.notify_all();
    for (std::size_t i = keep; i < workers_.size(); ++i) workers_[i]->thread.join();
    workers_.resize(keep);
  }

  void try_shrink() {
    std::unique_lock<std::mutex> lock(run_mutex_, std::try_to_lock);
    if (lock.owns_lock()) shrink_locked();  // else the run in flight shrinks when it ends
  }

  void worker_loop(Worker* self, int tid, std::uint64_t seen) {
    tl_worker = true;
    for (;;) {
      // Wait for the next job: spin a while (back-to-back calls), then sleep.
      const auto deadline = Clock::now() + kIdleSpin;
      for (unsigned i = 1; job_.load(std::memory_order_acquire) == seen; ++i) {
        if (self->stop.load(std::memory_order_relaxed)) return;
        if ((i & 63) != 0 || Clock::now() < deadline) {
          RNNKIT_PAUSE();
          continue;
        }
        std::unique_lock<std::mutex> lock(wake_mutex_);
        wake_.wait(lock, [&] {
          return job_.load(std::memory_order_acquire) != seen ||
                 self->stop.load(std::memory_order_relaxed);
        });
      }
      seen = job_.load(std::memory_order_acquire);
      const int size = static_cast<int>(seen & 0xffff);
      if (tid < size) {
        {
          TeamScope scope(this, tid, size);
          fn_(ctx_, tid, size);
        }
        finished_.fetch_add(1, std::memory_order_acq_rel);
      }
    }
  }

  static std::atomic<Team*> instance_;
  static std::once_flag once_;

  std::atomic<int> limit_;
  std::atomic<bool> shrink_pending_{false};
  std::mutex run_mutex_;  // one team run at a time; guards workers_
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::atomic<std::uint64_t> job_{0};  // (job number << 16) | team size (<= thread_cap())
  TeamFn fn_ = nullptr;
  void* ctx_ = nullptr;
  std::atomic<int> finished_{0};
  std::atomic<int> barrier_count_{0};
  std::atomic<bool> barrier_sense_{false};
  std::atomic<bool> cancel_request_{false};  // set by thread 0 of the run in flight
  std::atomic<bool> barrier_cancel_{false};  // the last barrier's verdict
};

std::atomic<Team*> Team::instance_{nullptr};
std::once_flag Team::once_;

}  // namespace

int max_threads() { return thread_cap(); }
void set_num_threads(int n) { Team::get().set_limit(n); }
int get_num_threads() { return Team::get().limit(); }
void team_run(int nthreads, TeamFn fn, void* ctx) { Team::get().run(nthreads, fn, ctx); }
bool team_barrier() { return Team::get().barrier(); }
bool team_cancel_point() { return Team::get().cancel_point(); }

void set_interrupt_poll(InterruptPoll poll, int interval_us) {
  g_poll_interval_us.store(std::max(0, interval_us), std::memory_order_relaxed);
  g_poll.store(poll, std::memory_order_release);
}

KernelCall::KernelCall() {
  if (tl_call_depth++ == 0 && !tl_worker) start_poll_clock();
}
KernelCall::~KernelCall() { --tl_call_depth; }

bool kernel_call_cancelled() { return tl_cancelled; }

}  // namespace rnnkit
