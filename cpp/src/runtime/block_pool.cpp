// Block cache behind block_pool.hpp: best fit among cached blocks, bounded size.
#include "rnnkit/block_pool.hpp"

#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

namespace rnnkit {
namespace {

constexpr std::size_t kPooledMin = std::size_t(1) << 20;    // large blocks: best fit
constexpr std::size_t kMaxCachedBytes = std::size_t(1) << 30;
constexpr std::size_t kMaxCachedBlocks = 32;
constexpr std::align_val_t kAlign{64};
// Small blocks (< kPooledMin) are cached per power-of-two size class: a streaming call
// (B=1, T=1) otherwise spends a quarter of its time in malloc/free for its scratch buffers.
constexpr int kSmallClasses = 21;          // 1 B .. 1 MiB
constexpr std::size_t kSmallPerClass = 8;

int small_class(std::size_t bytes) {
  int c = 6;  // 64 bytes minimum
  while ((std::size_t(1) << c) < bytes) ++c;
  return c;
}

struct FreeBlock {
  void* p;
  std::size_t bytes;
};

struct Pool {
  std::mutex mutex;
  std::vector<FreeBlock> free;  // oldest first
  std::size_t cached = 0;
  std::vector<void*> small[kSmallClasses];
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: arrays may be freed during interpreter exit
  return *p;
}

}  // namespace

void* pool_acquire(std::size_t bytes, std::size_t* capacity) {
  if (bytes == 0) bytes = 1;
  if (bytes < kPooledMin) {
    const int c = small_class(bytes);
    *capacity = std::size_t(1) << c;
    Pool& P = pool();
    {
      std::lock_guard<std::mutex> lock(P.mutex);
      if (!P.small[c].empty()) {
        void* p = P.small[c].back();
        P.small[c].pop_back();
        return p;
      }
    }
    return ::operator new(*capacity, kAlign);
  }
  {
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
    const int c = small_class(capacity);
    Pool& P = pool();
    {
      std::lock_guard<std::mutex> lock(P.mutex);
      if (P.small[c].size() < kSmallPerClass) {
        P.small[c].push_back(p);
        return;
      }
    }
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
  std::vector<void*> small;
  {
    Pool& P = pool();
    std::lock_guard<std::mutex> lock(P.mutex);
    all.swap(P.free);
    P.cached = 0;
    for (auto& cls : P.small) {
      small.insert(small.end(), cls.begin(), cls.end());
      cls.clear();
    }
  }
  for (const FreeBlock& b : all) ::operator delete(b.p, kAlign);
  for (void* p : small) ::operator delete(p, kAlign);
}

}  // namespace rnnkit
