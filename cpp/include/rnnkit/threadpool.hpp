// A persistent std::thread team (no OpenMP: a second OpenMP runtime beside NumPy's or
// PyTorch's oversubscribes the cores). The caller is thread 0 of every run; workers wait by
// spinning briefly, then sleeping. One run at a time: a concurrent caller (another Python
// thread, the GIL being released) runs its work on one thread instead — results are
// identical for every thread count, so that only costs speed.
#pragma once

namespace rnnkit {

using TeamFn = void (*)(void* ctx, int tid, int nthreads);

// Team size limit, default = the cores this process may run on. n < 1 restores the default.
void set_num_threads(int n);
int get_num_threads();

// Runs fn(ctx, tid, n) for tid in [0, n) with n = min(nthreads, get_num_threads()), on the
// calling thread and n-1 workers; returns when every call has returned.
void team_run(int nthreads, TeamFn fn, void* ctx);

// Barrier over the threads of the current team_run (every one of them must call it).
// A no-op for a team of one.
void team_barrier();

}  // namespace rnnkit
