// Block cache behind block_pool.hpp: best fit among cached blocks, bounded size.
#include "rnnkit/block_pool.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define RNNKIT_HAVE_ATFORK 1
#endif

#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

namespace rnnkit {
namespace {

constexpr std::size_t kPooledMin = std::size_t(1) << 20;    // large blocks: best fit
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

// Everything below is guarded by `mutex`. Invariant: cached_large + cached_small <= limit.
struct Pool {
  std::mutex mutex;
  std::vector<FreeBlock> free;  // large blocks, oldest first
  std::size_t cached_large = 0;
  std::size_t cached_small = 0;
  std::size_t limit = kDefaultPoolLimit;
  std::vector<void*> small[kSmallClasses];

  std::size_t cached() const { return cached_large + cached_small; }

  // Moves cached blocks (oldest large first, then small) to `out` until at most `target`
  // bytes stay cached; returns the bytes moved.
  std::size_t evict_to(std::size_t target, std::vector<void*>* out) {
    std::size_t moved = 0;
    std::size_t n = 0;
    while (cached() > target && n < free.size()) {
      out->push_back(free[n].p);
      cached_large -= free[n].bytes;
      moved += free[n].bytes;
      ++n;
    }
    free.erase(free.begin(), free.begin() + static_cast<std::ptrdiff_t>(n));
    for (int c = kSmallClasses - 1; c >= 0 && cached() > target; --c) {
      while (cached() > target && !small[c].empty()) {
        out->push_back(small[c].back());
        small[c].pop_back();
        cached_small -= std::size_t(1) << c;
        moved += std::size_t(1) << c;
      }
    }
    return moved;
  }
};

void free_all(const std::vector<void*>& blocks) {
  for (void* p : blocks) ::operator delete(p, kAlign);
}

#ifdef RNNKIT_HAVE_ATFORK
Pool* g_pool = nullptr;
// Held across fork() so the child gets a consistent, unlocked pool (the critical sections are
// short and never wait for anything else, so this cannot stall fork for long).
void pool_prepare_fork() { g_pool->mutex.lock(); }
void pool_after_fork() { g_pool->mutex.unlock(); }
#endif

Pool& pool() {
  static Pool* p = [] {
    Pool* created = new Pool();  // never destroyed: arrays may be freed during interpreter exit
#ifdef RNNKIT_HAVE_ATFORK
    g_pool = created;
    pthread_atfork(&pool_prepare_fork, &pool_after_fork, &pool_after_fork);
#endif
    return created;
  }();
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
        P.cached_small -= *capacity;
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
      P.cached_large -= blk.bytes;
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
      // Small blocks are cached only while they fit under the cap (never evict for them).
      if (P.small[c].size() < kSmallPerClass && P.cached() + capacity <= P.limit) {
        P.small[c].push_back(p);
        P.cached_small += capacity;
        return;
      }
    }
    ::operator delete(p, kAlign);
    return;
  }
  std::vector<void*> evicted;
  {
    Pool& P = pool();
    std::lock_guard<std::mutex> lock(P.mutex);
    if (capacity <= P.limit) {
      P.free.push_back({p, capacity});
      P.cached_large += capacity;
      // Oldest large blocks go first; the small ones alone always fit (see pool_release).
      P.evict_to(P.limit, &evicted);
      while (P.free.size() > kMaxCachedBlocks) {
        evicted.push_back(P.free.front().p);
        P.cached_large -= P.free.front().bytes;
        P.free.erase(P.free.begin());
      }
    } else {
      evicted.push_back(p);  // larger than the whole cap: never cached
    }
  }
  free_all(evicted);
}

std::size_t pool_trim() {
  std::vector<void*> all;
  std::size_t bytes;
  {
    Pool& P = pool();
    std::lock_guard<std::mutex> lock(P.mutex);
    bytes = P.evict_to(0, &all);
  }
  free_all(all);
  return bytes;
}

void set_pool_limit(std::size_t bytes) {
  std::vector<void*> evicted;
  {
    Pool& P = pool();
    std::lock_guard<std::mutex> lock(P.mutex);
    P.limit = bytes;
    P.evict_to(bytes, &evicted);
  }
  free_all(evicted);
}

std::size_t pool_limit() {
  Pool& P = pool();
  std::lock_guard<std::mutex> lock(P.mutex);
  return P.limit;
}

PoolStats pool_stats() {
  Pool& P = pool();
  std::lock_guard<std::mutex> lock(P.mutex);
  std::size_t blocks = P.free.size();
  for (const auto& cls : P.small) blocks += cls.size();
  return PoolStats{P.cached(), blocks};
}

}  // namespace rnnkit
