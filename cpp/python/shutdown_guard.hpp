// Taking the GIL back after a kernel while the interpreter shuts down.
//
// A daemon thread whose kernel call ends during interpreter shutdown must not take the GIL
// back: CPython < 3.14 ends such a thread with pthread_exit inside PyEval_RestoreThread,
// which unwinds the C++ frames of the binding (noexcept destructors, pybind11 handles):
// std::terminate. So the thread parks forever instead, and the process exits around it.
//
// Checking Py_IsFinalizing() just before PyEval_RestoreThread leaves a window (finalizing can
// begin between the check and the call). The guard closes it with a handshake: an atexit
// hook (atexit runs before the interpreter marks itself finalizing) raises a flag, then, with
// the GIL released, waits until no thread is between its check and the end of its
// PyEval_RestoreThread. A thread checks the flag only after announcing itself (a counter), so
// either the hook sees it and waits, or it sees the flag and parks.
#pragma once

#include <Python.h>

// Installs the atexit hook (idempotent). Call once, with the GIL held, at import.
void rnnkit_install_shutdown_guard();

// Called with the GIL released, before PyEval_RestoreThread. Returns kGilPark when the
// thread must park instead of taking the GIL (rnnkit_park_forever); otherwise restore the
// GIL, then pass the token to rnnkit_gil_return_done(). The main thread runs the shutdown
// itself (atexit handlers, finalizers may call kernels) and never parks; any other thread
// parks once the atexit hook has run or the interpreter is finalizing.
enum GilReturn : int { kGilPark = -1, kGilRestore = 0, kGilRestoreCounted = 1 };
GilReturn rnnkit_gil_return_begin();
void rnnkit_gil_return_done(GilReturn token);

// Sleeps forever (the thread's stack stays alive until the process exits).
[[noreturn]] void rnnkit_park_forever();
