// A persistent std::thread team (no OpenMP: a second OpenMP runtime beside NumPy's or
// PyTorch's oversubscribes the cores). The caller is thread 0 of every run; workers wait by
// spinning briefly, then sleeping. One run at a time: a concurrent caller (another Python
// thread, the GIL being released) runs its work on one thread instead — results are
// identical for every thread count, so that only costs speed.
//
// Fork: a child process forked after the team ran gets a fresh, empty team (pthread_atfork;
// the parent's workers do not exist there) and starts its own workers on its first team run.
//
// Interrupts: a kernel call can be cancelled. The calling thread asks the interrupt poll
// (set_interrupt_poll; the Python module installs one that runs the signal handlers, so
// Ctrl-C raises KeyboardInterrupt) at most every kPollInterval, at barriers and GEMM panel
// boundaries; once it answers true the rest of the call is skipped and its outputs are
// garbage: the caller must discard them (the Python bindings raise the pending exception).
#pragma once

namespace rnnkit {

using TeamFn = void (*)(void* ctx, int tid, int nthreads);

// The largest team: max(8, 4 * std::thread::hardware_concurrency()). Larger requests are
// clamped to it (more threads than that only oversubscribe the cores and cost memory).
int max_threads();

// Team size limit, default = the cores this process may run on; clamped to [1, max_threads()].
// n < 1 restores the default. Lowering the limit also stops and joins the surplus workers:
// at once if no team run is in flight, otherwise when the run in flight ends.
void set_num_threads(int n);
// The effective limit (after the clamp).
int get_num_threads();

// Runs fn(ctx, tid, n) for tid in [0, n) with n = min(nthreads, get_num_threads()), on the
// calling thread and n-1 workers; returns when every call has returned. Returns at once,
// without calling fn, when the calling thread's current kernel call was cancelled.
void team_run(int nthreads, TeamFn fn, void* ctx);

// Barrier over the threads of the current team_run (every one of them must call it).
// Returns true when the run was cancelled (an interrupt was requested): the SAME value on
// every thread of the team, so all of them can leave their loop at the same step and none
// waits at a barrier the others left. For a team of one it only polls and returns the flag.
bool team_barrier();

// For loops without barriers (GEMM panels): true when the current run was cancelled. Any
// thread may see it a little later than thread 0 (no agreement is needed without barriers).
bool team_cancel_point();

// ---- interrupts

// Returns true to cancel the calling thread's kernel call. Called only on threads that
// called team_run (never on workers), at most every kPollIntervalMs milliseconds of a
// call (so calls shorter than that never poll), with no lock of the team held.
using InterruptPoll = bool (*)();
constexpr int kPollIntervalMs = 20;
// nullptr (the default) disables polling. interval_us: the least time between two polls of
// one call (the C++ stress driver uses 0, polling at every barrier).
void set_interrupt_poll(InterruptPoll poll, int interval_us = kPollIntervalMs * 1000);

// Scope of one kernel call on the calling thread (the kernel table wraps every kernel in
// one; nested scopes belong to the outermost). Entering the outermost scope clears the
// thread's "cancelled" flag and starts the poll clock. Outside any scope every team_run
// starts uncancelled.
class KernelCall {
 public:
  KernelCall();
  ~KernelCall();
  KernelCall(const KernelCall&) = delete;
  KernelCall& operator=(const KernelCall&) = delete;
};

// Whether the calling thread's current (or most recent) kernel call was cancelled.
bool kernel_call_cancelled();

}  // namespace rnnkit
