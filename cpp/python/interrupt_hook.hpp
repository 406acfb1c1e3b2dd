// The Python side of the kernels' interrupt poll (rnnkit/threadpool.hpp): Ctrl-C during a
// long kernel call raises KeyboardInterrupt within ~kPollIntervalMs plus one time step.
#pragma once

// Installs the poll (idempotent). Call once, with the GIL held, when the module is imported.
// The poll runs on the thread that called the kernel, with the GIL released: it takes the
// GIL and runs the pending signal handlers (PyErr_CheckSignals) — only on the main thread,
// the only one Python delivers signals to, and never while the interpreter is finalizing.
// When a handler raises, the kernel call is cancelled and the exception stays set in the
// thread state: the bindings check PyErr_Occurred() after re-acquiring the GIL and raise it.
void rnnkit_install_interrupt_hook();

// True once the interpreter has begun finalizing (Py_IsFinalizing, or its private spelling
// before Python 3.13): taking the GIL then may block or end the calling thread.
bool rnnkit_interpreter_finalizing();

// Whether the calling thread is the interpreter's main thread (callable without the GIL).
bool rnnkit_on_main_thread();
