// Block cache behind block_pool.hpp: best fit among cached blocks, bounded size.
#include "rnnkit/block_pool.hpp"

#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

namespace rnnkit {
namespace {

constexpr std::size_t kPooledMin = std::size_t(1) << 20;    // smaller: plain allocation
constexpr std::size_t kMaxCachedBytes = std::size_t(1) << 30;
constexpr std::size_t kMaxCachedBlocks = 32;
constexpr std::align_val_t kAlign{64};

struct FreeBlock {
  void* p;
  std::size_t bytes;
};

struct Pool {
  std::mutex mutex;
  std::vector<FreeBlock> free;  // oldest first
  std::size_t cached = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: arrays may be freed during interpreter exit
  return *p;
}

}  // namespace

void* pool_acquire(std::size_t bytes, std::size_t* capacity) {
  if (bytes == 0) bytes = 1;
  if (bytes >= kPooledMin) {
    Pool& P = pool();
    std::lock_guard<std::mutex> lock(P.mutex);
    std::size_t best = P.free.size();
    for (std::size_t i = 0; i < P.free.size(); ++i) {
      const std::size_t b = P.free[i].bytes;
      // Best fit, and never more than twice the request (no hoarding of huge blocks).
      if (b >= bytes && b <= 2 * bytes && (best == P.free.size() || b < P.free[best].bytes)) {
        best = i;
      }
    }
    if (best != P.free.size()) {
      const FreeBlock blk = P.free[best];
      P.free.erase(P.free.begin() + static_cast<std::ptrdiff_t>(best));
      P.cached -= blk.bytes;
      *capacity = blk.bytes;
      return blk.p;
    }
  }
  *capacity = bytes;
  return ::operator new(bytes, kAlign);
}

void pool_release(void* p, std::size_t capacity) {
  if (!p) return;
  if (capacity < kPooledMin) {
    ::operator delete(p, kAlign);
    return;
  }
  std::vector<FreeBlock> evicted;
  {
    Pool& P = pool();
    std::lock_guard<std::mutex> lock(P.mutex);
    P.free.push_back({p, capacity});
    P.cached += capacity;
    while (P.cached > kMaxCachedBytes || P.free.size() > kMaxCachedBlocks) {
      evicted.push_back(P.free.front());
      P.cached -= P.free.front().bytes;
      P.free.erase(P.free.begin());
    }
  }
  for (const FreeBlock& b : evicted) ::operator delete(b.p, kAlign);
}

void pool_trim() {
  std::vector<FreeBlock> all;
  {
    Pool& P = pool();
    std::lock_guard<std::mutex> lock(P.mutex);
    all.swap(P.free);
    P.cached = 0;
  }
  for (const FreeBlock& b : all) ::operator delete(b.p, kAlign);
}

}  // namespace rnnkit
