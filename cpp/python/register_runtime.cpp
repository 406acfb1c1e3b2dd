// The runtime half of the module: ISA choice, threads, the block pool, build facts.
#include <pybind11/stl.h>

#include <stdexcept>

#include "python/convert.hpp"
#include "rnnkit/dispatch.hpp"
#include "rnnkit/threadpool.hpp"

namespace rnnkit_py {

void register_runtime(py::module_& m) {
  m.def("build_info", [] {
    py::dict info;
    info["isa"] = rnnkit::active_kernels().isa;
    info["compiled_isas"] = rnnkit::compiled_isas();
    info["supported_isas"] = rnnkit::supported_isas();
    info["num_threads"] = rnnkit::get_num_threads();
    info["compiler"] = RNNKIT_COMPILER;
    return info;
  });
  m.def("select_isa", [](const std::string& name) {
    try {
      rnnkit::select_isa(name);
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  }, py::arg("name"));
  m.def("set_num_threads", [](int n) { rnnkit::set_num_threads(n); }, py::arg("n"));
  m.def("get_num_threads", [] { return rnnkit::get_num_threads(); });
  m.def("max_threads", [] { return rnnkit::max_threads(); });
  m.def("pool_trim", [] { return rnnkit::pool_trim(); });
  m.def("set_pool_limit", [](std::size_t n) { rnnkit::set_pool_limit(n); }, py::arg("bytes"));
  m.def("get_pool_limit", [] { return rnnkit::pool_limit(); });
  m.def("pool_stats", [] {
    const rnnkit::PoolStats s = rnnkit::pool_stats();
    return py::make_tuple(s.cached_bytes, s.cached_blocks);
  });
}

}  // namespace rnnkit_py
