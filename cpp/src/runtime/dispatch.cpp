// CPU feature detection and the choice of kernel table (compiled once, baseline ISA).
#include "rnnkit/dispatch.hpp"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace rnnkit {

namespace generic { const KernelTable& kernel_table(); }
#ifdef RNNKIT_HAVE_AVX2
namespace avx2 { const KernelTable& kernel_table(); }
#endif
#ifdef RNNKIT_HAVE_AVX512
namespace avx512 { const KernelTable& kernel_table(); }
#endif

namespace {

struct IsaEntry {
  const char* name;
  const KernelTable& (*table)();
  bool (*cpu_has)();
};

bool always() { return true; }
#if defined(__x86_64__) || defined(__i386__)
bool cpu_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
bool cpu_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         cpu_avx2();
}
#endif

const std::vector<IsaEntry>& entries() {
  static const std::vector<IsaEntry> list = {
      {"generic", &generic::kernel_table, &always},
#ifdef RNNKIT_HAVE_AVX2
      {"avx2", &avx2::kernel_table, &cpu_avx2},
#endif
#ifdef RNNKIT_HAVE_AVX512
      {"avx512", &avx512::kernel_table, &cpu_avx512},
#endif
  };
  return list;
}

const KernelTable& table_named(const std::string& name) {
  for (const IsaEntry& e : entries()) {
    if (name != e.name) continue;
    if (!e.cpu_has()) {
      throw std::invalid_argument("ISA '" + name + "' is compiled in but this CPU lacks it");
    }
    return e.table();
  }
  std::string known;
  for (const IsaEntry& e : entries()) known += std::string(known.empty() ? "" : ", ") + e.name;
  throw std::invalid_argument("unknown ISA '" + name + "'; this build has: " + known);
}

const KernelTable& initial_table() {
  if (const char* forced = std::getenv("RNNKIT_ISA")) {
    if (*forced) return table_named(forced);
  }
  const KernelTable* best = nullptr;
  for (const IsaEntry& e : entries()) {
    if (e.cpu_has()) best = &e.table();
  }
  return *best;
}

std::atomic<const KernelTable*>& active_slot() {
  static std::atomic<const KernelTable*> slot{nullptr};
  return slot;
}

}  // namespace

std::vector<std::string> compiled_isas() {
  std::vector<std::string> names;
  for (const IsaEntry& e : entries()) names.push_back(e.name);
  return names;
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> names;
  for (const IsaEntry& e : entries()) {
    if (e.cpu_has()) names.push_back(e.name);
  }
  return names;
}

const KernelTable& active_kernels() {
  const KernelTable* t = active_slot().load(std::memory_order_acquire);
  if (!t) {
    t = &initial_table();
    active_slot().store(t, std::memory_order_release);
  }
  return *t;
}

void select_isa(const std::string& name) {
  active_slot().store(&table_named(name), std::memory_order_release);
}

}  // namespace rnnkit
