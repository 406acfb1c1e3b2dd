// A small cache of large memory blocks reused between calls. Training at (T, B, H) = (100,
// 32, 256) allocates ~40 MB of outputs, cache and workspace per forward+backward; fresh pages
// from the OS cost a page fault each (~7000 a call, a third of the forward's time). Blocks
// freed back here keep their pages and serve the next call of a similar size.
#pragma once
#include <cstddef>

namespace rnnkit {

// Memory of at least `bytes` bytes, 64-byte aligned; *capacity receives its real size, to be
// passed back to pool_release. Small requests go straight to the allocator.
void* pool_acquire(std::size_t bytes, std::size_t* capacity);
void pool_release(void* p, std::size_t capacity);
// Returns every cached block to the system.
void pool_trim();

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
