# udc_set_compile_options(target): the flags every onnx-udc target shares.
#
# -ffp-contract=off is part of the bit-exactness contract (FORMAT.md 4.1): every binary32
# operation of the dequantization rounds on its own; no fused multiply-add, so the C++
# decoder, CUDA and numpy agree bit for bit. -fno-fast-math keeps IEEE semantics even if a
# user passes -ffast-math in CMAKE_CXX_FLAGS.
function(udc_set_compile_options target)
  target_compile_options(${target} PRIVATE
    -ffp-contract=off -fno-fast-math
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion)
endfunction()

# udc_add_fuzz_target(name source capi_objects...): udc_fuzz_<name>_replay always (the target
# body + fuzz/replay_main.cc), and udc_fuzz_<name> (libFuzzer) in a fuzz build.
function(udc_add_fuzz_target name source)
  set(_objects "")
  foreach(lib IN LISTS ARGN)
    list(APPEND _objects $<TARGET_OBJECTS:${lib}>)
  endforeach()
  set(_links udc_core)
  if("udc_capi_encode" IN_LIST ARGN)
    list(APPEND _links udc_encode)
  endif()
  add_executable(udc_fuzz_${name}_replay ${source} fuzz/replay_main.cc ${_objects})
  target_link_libraries(udc_fuzz_${name}_replay PRIVATE ${_links})
  target_include_directories(udc_fuzz_${name}_replay PRIVATE "${PROJECT_SOURCE_DIR}/include" "${PROJECT_SOURCE_DIR}/src")
  udc_set_compile_options(udc_fuzz_${name}_replay)
  if(UDC_BUILD_FUZZER)
    add_executable(udc_fuzz_${name} ${source} ${_objects})
    target_link_libraries(udc_fuzz_${name} PRIVATE ${_links})
    target_include_directories(udc_fuzz_${name} PRIVATE "${PROJECT_SOURCE_DIR}/include" "${PROJECT_SOURCE_DIR}/src")
    target_link_options(udc_fuzz_${name} PRIVATE -fsanitize=fuzzer)
    udc_set_compile_options(udc_fuzz_${name})
  endif()
endfunction()
