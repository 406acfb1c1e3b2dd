// See shutdown_guard.hpp.
#include "shutdown_guard.hpp"

#include <pythread.h>

#include <atomic>
#include <chrono>
#include <thread>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define RNNKIT_HAVE_ATFORK 1
#endif

#include "interrupt_hook.hpp"

namespace {

// Set by the atexit hook; threads between their check and the end of PyEval_RestoreThread.
// Sequentially consistent: each side stores its own variable, then loads the other's.
std::atomic<bool> g_exiting{false};
std::atomic<int> g_returning{0};

PyObject* on_python_exit(PyObject*, PyObject*) {
  g_exiting.store(true);
  Py_BEGIN_ALLOW_THREADS  // let the announced threads finish taking the GIL back
  while (g_returning.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

PyMethodDef g_exit_def = {"_rnnkit_shutdown_guard", &on_python_exit, METH_NOARGS,
                          "rnnkit: park threads that finish a kernel during shutdown."};

#ifdef RNNKIT_HAVE_ATFORK
// A forked child has only the forking thread: nobody is between check and restore.
void forked_child() { g_returning.store(0); }
#endif

}  // namespace

void rnnkit_install_shutdown_guard() {
  static bool installed = false;  // the GIL serialises calls
  if (installed) return;
  installed = true;
#ifdef RNNKIT_HAVE_ATFORK
  pthread_atfork(nullptr, nullptr, &forked_child);
#endif
  PyObject* hook = PyCFunction_New(&g_exit_def, nullptr);
  PyObject* atexit = hook != nullptr ? PyImport_ImportModule("atexit") : nullptr;
  PyObject* done = atexit != nullptr ? PyObject_CallMethod(atexit, "register", "O", hook)
                                     : nullptr;
  Py_XDECREF(done);
  Py_XDECREF(atexit);
  Py_XDECREF(hook);
  if (PyErr_Occurred()) PyErr_Clear();  // best effort: the finalizing check still applies
}

GilReturn rnnkit_gil_return_begin() {
  if (rnnkit_on_main_thread()) return kGilRestore;  // it runs the shutdown: never parks
  g_returning.fetch_add(1);  // announce, then check: the hook waits for announced threads
  if (g_exiting.load() || rnnkit_interpreter_finalizing()) {
    g_returning.fetch_sub(1);
    return kGilPark;
  }
  return kGilRestoreCounted;
}

void rnnkit_gil_return_done(GilReturn token) {
  if (token == kGilRestoreCounted) g_returning.fetch_sub(1);
}

[[noreturn]] void rnnkit_park_forever() {
  for (;;) std::this_thread::sleep_for(std::chrono::hours(24));
}
