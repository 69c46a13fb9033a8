// parallel.h - split [0, n) into contiguous chunks run on a few std::threads.
//
// Each element is computed independently of the chunking, so results are bit-identical
// for any thread count. Small ranges run inline on the calling thread.
#ifndef UDC_CORE_PARALLEL_H_
#define UDC_CORE_PARALLEL_H_

#include <algorithm>
#include <cstdint>
#include <system_error>
#include <thread>
#include <vector>

namespace udc {

// Elements below which a range is not split (thread start-up costs ~tens of microseconds).
constexpr uint64_t kParallelMinElements = uint64_t{1} << 20;

// max_threads <= 0 means std::thread::hardware_concurrency(), capped at 8.
template <typename Fn>
void ParallelFor(uint64_t n, int max_threads, Fn&& fn) {
  unsigned threads = max_threads > 0 ? static_cast<unsigned>(max_threads)
                                     : std::min(8u, std::max(1u, std::thread::hardware_concurrency()));
  threads = static_cast<unsigned>(std::min<uint64_t>(threads, n / (kParallelMinElements / 2) + 1));
  if (n < kParallelMinElements || threads <= 1) {
    fn(uint64_t{0}, n);
    return;
  }
  const uint64_t chunk = (n + threads - 1) / threads;
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  uint64_t begin = chunk;  // chunk 0 runs on this thread
  for (unsigned t = 1; t < threads && begin < n; ++t, begin += chunk) {
    const uint64_t end = std::min(n, begin + chunk);
    try {
      pool.emplace_back([&fn, begin, end] { fn(begin, end); });
    } catch (const std::system_error&) {  // could not start a thread: do the chunk here
      fn(begin, end);
    }
  }
  fn(uint64_t{0}, std::min(n, chunk));
  for (auto& th : pool) th.join();
}

}  // namespace udc

#endif  // UDC_CORE_PARALLEL_H_
