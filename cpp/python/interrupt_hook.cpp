// Interrupt poll for the Python module (see interrupt_hook.hpp).
#include "interrupt_hook.hpp"

#include <Python.h>
#include <pythread.h>

#include <atomic>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define RNNKIT_HAVE_ATFORK 1
#endif

#include "rnnkit/threadpool.hpp"

namespace {

// PyThread_get_thread_ident() of the interpreter's main thread (threading.main_thread()).
std::atomic<unsigned long> g_main_thread{0};

bool poll_python_signals() {
  // Only the main thread runs signal handlers (PyErr_CheckSignals returns 0 elsewhere), so
  // other threads need not take the GIL at all: taking it can wait a whole switch interval
  // (5 ms) when another Python thread is running.
  if (PyThread_get_thread_ident() != g_main_thread.load(std::memory_order_relaxed)) return false;
  // Taking the GIL while the interpreter shuts down may block or end the thread.
  if (rnnkit_interpreter_finalizing()) return false;
  const PyGILState_STATE gil = PyGILState_Ensure();
  // Runs the handlers; a raising one (KeyboardInterrupt for SIGINT) leaves its exception set
  // in this thread's state, where the bindings find it after the kernel returns.
  const int failed = PyErr_CheckSignals();
  PyGILState_Release(gil);
  return failed != 0;
}

#ifdef RNNKIT_HAVE_ATFORK
// A forked child's only thread is the one that forked, and Python makes it the main thread.
void forked_child() { g_main_thread.store(PyThread_get_thread_ident(), std::memory_order_relaxed); }
#endif

}  // namespace

bool rnnkit_on_main_thread() {
  return PyThread_get_thread_ident() == g_main_thread.load(std::memory_order_relaxed);
}

bool rnnkit_interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

void rnnkit_install_interrupt_hook() {
  static bool installed = false;  // the GIL serialises calls
  if (installed) return;
  installed = true;
#ifdef RNNKIT_HAVE_ATFORK
  pthread_atfork(nullptr, nullptr, &forked_child);
#endif
  // Imports may run on any thread: ask threading which one is the main thread.
  unsigned long main_ident = PyThread_get_thread_ident();
  PyObject* threading = PyImport_ImportModule("threading");
  if (threading != nullptr) {
    PyObject* main = PyObject_CallMethod(threading, "main_thread", nullptr);
    PyObject* ident = main != nullptr ? PyObject_GetAttrString(main, "ident") : nullptr;
    if (ident != nullptr && PyLong_Check(ident)) main_ident = PyLong_AsUnsignedLong(ident);
    Py_XDECREF(ident);
    Py_XDECREF(main);
    Py_DECREF(threading);
  }
  if (PyErr_Occurred()) PyErr_Clear();  // best effort: fall back to the importing thread
  g_main_thread.store(main_ident, std::memory_order_relaxed);
  rnnkit::set_interrupt_poll(&poll_python_signals);
}
