// A small cache of large memory blocks reused between calls. Training at (T, B, H) = (100,
// 32, 256) allocates ~40 MB of outputs, cache and workspace per forward+backward; fresh pages
// from the OS cost a page fault each (~7000 a call, a third of the forward's time). Blocks
// freed back here keep their pages and serve the next call of a similar size.
//
// Fork: the pool's mutex is held across fork() (pthread_atfork), so a child never inherits
// it locked nor the block lists half-updated.
#pragma once
#include <cstddef>

namespace rnnkit {

// Memory of at least `bytes` bytes, 64-byte aligned; *capacity receives its real size, to be
// passed back to pool_release. Small requests go straight to the allocator.
void* pool_acquire(std::size_t bytes, std::size_t* capacity);
void pool_release(void* p, std::size_t capacity);
// Returns every cached block to the system; the number of bytes released.
std::size_t pool_trim();

// Cap on the bytes the pool keeps cached (large and small blocks together); it never caches
// more. 0 disables caching. Lowering it releases cached blocks (oldest first) at once.
// Default kDefaultPoolLimit; the Python package reads RNNKIT_POOL_LIMIT_BYTES at import.
constexpr std::size_t kDefaultPoolLimit = std::size_t(1) << 30;
void set_pool_limit(std::size_t bytes);
std::size_t pool_limit();

struct PoolStats {
  std::size_t cached_bytes;   // held by the pool, not in use
  std::size_t cached_blocks;
};
PoolStats pool_stats();

// RAII workspace of n elements of T from the pool.
template <class T>
class PooledBuffer {
 public:
  explicit PooledBuffer(std::size_t n) : p_(static_cast<T*>(pool_acquire(n * sizeof(T), &cap_))) {}
  ~PooledBuffer() { pool_release(p_, cap_); }
  PooledBuffer(const PooledBuffer&) = delete;
  PooledBuffer& operator=(const PooledBuffer&) = delete;
  T* data() const { return p_; }

 private:
  std::size_t cap_ = 0;
  T* p_;
};

}  // namespace rnnkit
