# UdcCuda: the CUDA decoder (runtime/src/cuda, runtime/src/ort/cuda_ops.cc), built into
# libonnx_udc.so when a CUDA compiler is found (UDC_CUDA=AUTO), required (ON) or never (OFF).
# Without one the library is the CPU-only build, byte for byte the same sources.
#
# Sets UDC_WITH_CUDA (ON/OFF) and, when ON, the static library target udc_cuda:
#   - nvcc compiles only src/cuda/reconstruct.cu (the kernel and its extern "C" launcher);
#     onnxruntime's headers stay in .cc files compiled by the host compiler (BUILD-NOTES);
#   - --fmad=false: no fused multiply-add contraction, so the GPU rounds every binary32
#     operation as the CPU build does with -ffp-contract=off (bit-exactness contract);
#   - the CUDA runtime is linked statically (cudart_static): libonnx_udc.so then depends on
#     no libcudart.so.N, loads on machines without CUDA (the CPU ops work there), and does
#     not clash with the CUDA runtime onnxruntime-gpu loads; it needs only the driver
#     (libcuda.so.1, opened by cudart at the first CUDA call).
set(UDC_WITH_CUDA OFF)
if(UDC_CUDA STREQUAL "OFF")
  message(STATUS "onnx_udc: CUDA decoder disabled (UDC_CUDA=OFF)")
  return()
endif()

include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  if(UDC_CUDA STREQUAL "ON")
    message(FATAL_ERROR "UDC_CUDA=ON but no CUDA compiler was found (put nvcc on PATH or set CUDACXX)")
  endif()
  message(STATUS "onnx_udc: no CUDA compiler found: CPU-only build (the CUDA entry points report UNAVAILABLE)")
  return()
endif()

# Real code for the GPUs onnxruntime-gpu supports (Turing to Hopper; nvcc 13 dropped older
# ones) plus PTX of the newest for GPUs after them. Override with -DCMAKE_CUDA_ARCHITECTURES.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES "75-real;80-real;86-real;89-real;90")
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

add_library(udc_cuda STATIC src/cuda/reconstruct.cu src/cuda/device_decode.cc)
target_include_directories(udc_cuda PUBLIC "${CMAKE_CURRENT_SOURCE_DIR}/src")
target_link_libraries(udc_cuda PUBLIC udc_core CUDA::cudart_static)
target_compile_definitions(udc_cuda PUBLIC UDC_WITH_CUDA=1)
set_target_properties(udc_cuda PROPERTIES
  CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON
  CUDA_VISIBILITY_PRESET hidden CUDA_RUNTIME_LIBRARY Static POSITION_INDEPENDENT_CODE ON)
target_compile_options(udc_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:--fmad=false -Xcompiler=-ffp-contract=off,-fno-fast-math>
  $<$<COMPILE_LANGUAGE:CXX>:-ffp-contract=off -fno-fast-math -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion>)
set(UDC_WITH_CUDA ON)
message(STATUS "onnx_udc: CUDA decoder with ${CMAKE_CUDA_COMPILER} ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}")
