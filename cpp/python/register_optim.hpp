// The optimizer half of rnnkit._core (cpp/python/register_optim.cpp).
#pragma once
#include <pybind11/pybind11.h>

namespace rnnkit_py {
void register_optim(pybind11::module_& m);
}  // namespace rnnkit_py
