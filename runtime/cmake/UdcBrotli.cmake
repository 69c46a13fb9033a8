# Provides the imported target udc::brotlidec: brotli's decoder, static by default
# (libbrotlidec.a + libbrotlicommon.a, Debian's libbrotli-dev) so libonnx_udc.so needs
# nothing but libc/libstdc++/libm/libgcc at deployment. BROTLI_ROOT may point at a prefix.
find_path(BROTLI_INCLUDE_DIR brotli/decode.h HINTS "${BROTLI_ROOT}/include")
if(UDC_BROTLI_STATIC)
  find_library(BROTLIDEC_LIBRARY NAMES libbrotlidec.a libbrotlidec-static.a HINTS "${BROTLI_ROOT}/lib")
  find_library(BROTLICOMMON_LIBRARY NAMES libbrotlicommon.a libbrotlicommon-static.a HINTS "${BROTLI_ROOT}/lib")
else()
  find_library(BROTLIDEC_LIBRARY NAMES brotlidec HINTS "${BROTLI_ROOT}/lib")
  find_library(BROTLICOMMON_LIBRARY NAMES brotlicommon HINTS "${BROTLI_ROOT}/lib")
endif()
if(NOT BROTLI_INCLUDE_DIR OR NOT BROTLIDEC_LIBRARY OR NOT BROTLICOMMON_LIBRARY)
  message(FATAL_ERROR
    "brotli's decoder was not found (brotli/decode.h: ${BROTLI_INCLUDE_DIR}, "
    "decoder: ${BROTLIDEC_LIBRARY}, common: ${BROTLICOMMON_LIBRARY}). "
    "On Debian/Ubuntu: apt-get install libbrotli-dev; or set BROTLI_ROOT. "
    "Set -DUDC_BROTLI_STATIC=OFF to link the shared libraries instead.")
endif()
add_library(udc_brotlidec INTERFACE)
target_include_directories(udc_brotlidec SYSTEM INTERFACE "${BROTLI_INCLUDE_DIR}")
# Order matters for static archives: the decoder needs symbols from common.
target_link_libraries(udc_brotlidec INTERFACE "${BROTLIDEC_LIBRARY}" "${BROTLICOMMON_LIBRARY}")
add_library(udc::brotlidec ALIAS udc_brotlidec)
message(STATUS "brotli decoder: ${BROTLIDEC_LIBRARY} ${BROTLICOMMON_LIBRARY}")
