// replay_main - runs LLVMFuzzerTestOneInput over files (or every file of folders) given on
// the command line, for compilers without libFuzzer (gcc + -fsanitize=address works).
//
//   udc_fuzz_replay [--mutate N] [--seed S] PATH...
//
// With --mutate N every input is also run as N mutants (1 to 4 of: flip a bit, set a byte
// to a random or boundary value, insert, delete or duplicate bytes, truncate), drawn from a
// fixed-seed generator: the same command line runs the same inputs on every machine. The
// targets recompute the blob checksum themselves, so mutants reach the coders and
// quantizers. It is the CI smoke of the fuzz targets (the libFuzzer build, `make fuzz`,
// explores far more).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

struct Rng {  // splitmix64
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(Next() % n); }
};

void Mutate(std::vector<uint8_t>& b, Rng& rng) {
  static const uint8_t kBoundary[] = {0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF};
  const int ops = 1 + static_cast<int>(rng.Below(4));
  for (int k = 0; k < ops; ++k) {
    // Half of the edits land in the first 64 bytes (the header and the payload's start).
    const size_t span = b.empty() ? 0 : (rng.Below(2) ? std::min<size_t>(b.size(), 64) : b.size());
    const size_t at = rng.Below(span);
    switch (rng.Below(7)) {
      case 0: if (!b.empty()) b[at] ^= static_cast<uint8_t>(1u << rng.Below(8)); break;
      case 1: if (!b.empty()) b[at] = static_cast<uint8_t>(rng.Next()); break;
      case 2: if (!b.empty()) b[at] = kBoundary[rng.Below(sizeof kBoundary)]; break;
      case 3: b.insert(b.begin() + static_cast<long>(at), static_cast<uint8_t>(rng.Next())); break;
      case 4: if (!b.empty()) b.erase(b.begin() + static_cast<long>(at)); break;
      case 5: b.resize(rng.Below(b.size() + 1)); break;
      default: {  // duplicate a slice
        if (b.empty()) break;
        const size_t len = 1 + rng.Below(std::min<size_t>(16, b.size() - at));
        std::vector<uint8_t> slice(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + len));
        b.insert(b.begin() + static_cast<long>(rng.Below(b.size() + 1)), slice.begin(), slice.end());
      }
    }
  }
}

size_t RunFile(const std::filesystem::path& p, uint64_t mutants, Rng& rng) {
  std::ifstream f(p, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  std::vector<uint8_t> m;
  for (uint64_t i = 0; i < mutants; ++i) {
    m = bytes;
    Mutate(m, rng);
    LLVMFuzzerTestOneInput(m.data(), m.size());
  }
  return 1 + static_cast<size_t>(mutants);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t mutants = 0;
  Rng rng{20261203};
  std::vector<std::filesystem::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--mutate" || a == "--seed") && i + 1 < argc) {
      const uint64_t v = std::strtoull(argv[++i], nullptr, 10);
      if (a == "--mutate") mutants = v; else rng.s = v;
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: %s [--mutate N] [--seed S] PATH...\n", argv[0]);
      return 0;
    } else {
      inputs.emplace_back(a);
    }
  }
  size_t files = 0, runs = 0;
  for (const auto& p : inputs) {
    if (std::filesystem::is_directory(p)) {
      std::vector<std::filesystem::path> found;
      for (const auto& e : std::filesystem::recursive_directory_iterator(p)) {
        if (e.is_regular_file()) found.push_back(e.path());
      }
      std::sort(found.begin(), found.end());  // the same order on every file system
      for (const auto& q : found) { runs += RunFile(q, mutants, rng); ++files; }
    } else if (std::filesystem::is_regular_file(p)) {
      runs += RunFile(p, mutants, rng);
      ++files;
    } else {
      std::fprintf(stderr, "udc_fuzz_replay: %s: no such file or folder\n", p.c_str());
      return 2;
    }
  }
  std::printf("replayed %zu inputs (%zu runs)\n", files, runs);
  return 0;
}
