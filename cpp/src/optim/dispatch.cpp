// The optimizer updates of the ISA in use: the per-ISA tables of cpp/src/optim/update.cpp,
// chosen by the name of the cell kernels' active table (so RNNKIT_ISA and select_isa switch
// both together). Compiled once, baseline ISA.
#include <cstring>

#include "rnnkit/dispatch.hpp"
#include "rnnkit/optim.hpp"

namespace rnnkit {

namespace generic { const OptimTable& optim_table(); }
#ifdef RNNKIT_HAVE_AVX2
namespace avx2 { const OptimTable& optim_table(); }
#endif
#ifdef RNNKIT_HAVE_AVX512
namespace avx512 { const OptimTable& optim_table(); }
#endif

namespace {

const OptimTable& active_optim() {
  const char* isa = active_kernels().isa;
#ifdef RNNKIT_HAVE_AVX512
  if (std::strcmp(isa, avx512::optim_table().isa) == 0) return avx512::optim_table();
#endif
#ifdef RNNKIT_HAVE_AVX2
  if (std::strcmp(isa, avx2::optim_table().isa) == 0) return avx2::optim_table();
#endif
  return generic::optim_table();
}

}  // namespace

void optim_update(const OptimArgs<float>& a) { active_optim().f32(a); }
void optim_update(const OptimArgs<double>& a) { active_optim().f64(a); }

}  // namespace rnnkit
