// udc_bench_decode - single-threaded decode throughput of the C++ core, per blob file.
//
//   udc_bench_decode [--repeat N] [--min-seconds S] [--wall] BLOB...
//
// For each blob: Inspect once, then time (best of N runs, each run repeated until it lasts
// S seconds) (a) the coder alone (payload -> planar symbol bytes), (b) the whole decode
// (DecodeInto with DecodeOptions max_threads = 1), and (c) a memcpy of the decoded tensor's
// bytes, the baseline measured in the same run. Prints one tab-separated line per blob:
//   file quantizer coder numel width nbytes payload_len coder_ns decode_ns memcpy_ns simd
// Times are per decode of the whole blob, in nanoseconds of the thread's CPU time (the
// machine may be shared: time the thread was not running is not counted), or of wall-clock
// time with --wall. The SIMD level is the decoder's (core/simd.h; UDC_SIMD caps it).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "core/decode.h"
#include "core/simd.h"

namespace {

// The calling thread's CPU time in seconds: on a shared machine the time this thread ran,
// not the time other processes held the core (wall-clock time with --wall).
bool g_wall = false;
double Seconds() {
  if (g_wall) return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Best over `repeat` rounds of the mean time of fn(), each round at least min_seconds long.
template <class Fn>
double BestNs(int repeat, double min_seconds, Fn&& fn) {
  double best = 1e300;
  for (int r = 0; r < repeat; ++r) {
    long iters = 0;
    const double t0 = Seconds();
    double elapsed = 0;
    do {
      fn();
      ++iters;
      elapsed = Seconds() - t0;
    } while (elapsed < min_seconds);
    best = std::min(best, elapsed * 1e9 / static_cast<double>(iters));
  }
  return best;
}

volatile uint8_t g_sink;

}  // namespace

int main(int argc, char** argv) {
  int repeat = 3;
  double min_seconds = 0.2;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--repeat" && i + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--min-seconds" && i + 1 < argc) {
      min_seconds = std::atof(argv[++i]);
    } else if (a == "--wall") {
      g_wall = true;
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: %s [--repeat N] [--min-seconds S] [--wall] BLOB...\n", argv[0]);
      return 0;
    } else {
      files.push_back(a);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s [--repeat N] [--min-seconds S] [--wall] BLOB...\n", argv[0]);
    return 2;
  }
  std::printf("file\tquantizer\tcoder\tnumel\twidth\tnbytes\tpayload_len\tcoder_ns\tdecode_ns\tmemcpy_ns\tsimd\n");
  udc::DecodeOptions one_thread;
  one_thread.max_threads = 1;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::vector<uint8_t> blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    udc::BlobView view;
    udc::Status st = udc::Inspect(blob.data(), blob.size(), &view);
    if (!st.ok()) {
      std::fprintf(stderr, "%s: %s: %s\n", f.c_str(), udc::CodeName(st.code()), st.message().c_str());
      return 1;
    }
    const udc::Header& h = view.header;
    const size_t nbytes = static_cast<size_t>(view.nbytes());
    std::unique_ptr<uint8_t[]> out(new uint8_t[nbytes ? nbytes : 1]);
    std::unique_ptr<uint8_t[]> copy(new uint8_t[nbytes ? nbytes : 1]);
    st = udc::DecodeInto(view, out.get(), nbytes, one_thread);
    if (!st.ok()) {
      std::fprintf(stderr, "%s: %s: %s\n", f.c_str(), udc::CodeName(st.code()), st.message().c_str());
      return 1;
    }
    const double coder_ns = BestNs(repeat, min_seconds, [&] {
      udc::ByteBuffer scratch;
      const uint8_t* symbols = nullptr;
      if (!view.coder->Decode(h.payload, h.payload_len, h.numel, h.symbol_width, &scratch, &symbols).ok()) std::abort();
      g_sink = symbols[0];
    });
    const double decode_ns = BestNs(repeat, min_seconds, [&] {
      if (!udc::DecodeInto(view, out.get(), nbytes, one_thread).ok()) std::abort();
      g_sink = out[0];
    });
    const double memcpy_ns = BestNs(repeat, min_seconds, [&] {
      std::memcpy(copy.get(), out.get(), nbytes);
      g_sink = copy[nbytes / 2];
    });
    std::printf("%s\t%u\t%u\t%llu\t%u\t%zu\t%llu\t%.0f\t%.0f\t%.0f\t%s\n", f.c_str(), unsigned{h.quantizer},
                unsigned{h.coder}, static_cast<unsigned long long>(h.numel), unsigned{h.symbol_width}, nbytes,
                static_cast<unsigned long long>(h.payload_len), coder_ns, decode_ns, memcpy_ns,
                udc::simd::Name(udc::simd::Active()));
  }
  return 0;
}
