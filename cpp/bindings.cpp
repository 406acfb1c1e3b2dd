// The Python module rnnkit._core: chooses the ISA, then registers the runtime functions
// (cpp/python/register_runtime.cpp), the interrupt hook (cpp/python/interrupt_hook.cpp), the
// shutdown guard (cpp/python/shutdown_guard.cpp) and
// one <cell>_forward / <cell>_backward pair per line of cells.def
// (cpp/python/register_cells.cpp). Shared conversion helpers: cpp/python/convert.hpp.
#include <stdexcept>
#include <string>

#include "python/convert.hpp"
#include "python/interrupt_hook.hpp"
#include "python/register_optim.hpp"
#include "python/shutdown_guard.hpp"
#include "rnnkit/dispatch.hpp"

PYBIND11_MODULE(_core, m) {
  namespace py = pybind11;
  m.doc() = "rnnkit C++ kernels (use rnnkit.ops, which documents the arguments).";

  // Choose the ISA now, so a bad RNNKIT_ISA fails at import with a clear message.
  try {
    rnnkit::active_kernels();
  } catch (const std::invalid_argument& e) {
    throw py::value_error(std::string("RNNKIT_ISA: ") + e.what());
  }
  rnnkit_py::register_runtime(m);
  rnnkit_install_interrupt_hook();
  rnnkit_install_shutdown_guard();
  rnnkit_py::register_cells(m);
  rnnkit_py::register_optim(m);  // optim_update, embedding_row_sums (register_optim.cpp)
}
