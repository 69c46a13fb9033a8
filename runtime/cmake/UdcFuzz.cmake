# UdcFuzz: flags of a fuzz build (-DUDC_BUILD_FUZZER=ON, clang with libFuzzer; `make fuzz`
# configures one in runtime/build-fuzz). Every target configured after this, the decoding
# core and C API included, gets libFuzzer's coverage instrumentation (fuzzer-no-link) and
# AddressSanitizer + UndefinedBehaviorSanitizer with no recovery, so a fuzzer sees the whole
# decoder and any UB aborts the run. brotli's decoder is the system's static library and is
# not instrumented (it is fuzzed upstream, in OSS-Fuzz).
include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer")
check_cxx_source_compiles(
  "#include <cstdint>\n#include <cstddef>\nextern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }"
  UDC_HAVE_LIBFUZZER)
unset(CMAKE_REQUIRED_FLAGS)
if(NOT UDC_HAVE_LIBFUZZER)
  message(FATAL_ERROR "UDC_BUILD_FUZZER: ${CMAKE_CXX_COMPILER} does not support -fsanitize=fuzzer "
                      "(use clang, e.g. CXX=clang++-19; `make fuzz` installs it from the Debian mirror)")
endif()
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                    -fno-omit-frame-pointer -g)
add_link_options(-fsanitize=address,undefined)
message(STATUS "fuzz build: every target instrumented (fuzzer-no-link, address, undefined)")
