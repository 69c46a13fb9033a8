# cmake -DFILES="a;b" -P check_no_encoder.cmake
# Fails when one of FILES (the decoding core archive, the fuzz replay, the CUDA decoder
# archive) defines or references the range encoder (udc_encode, capi_encode.cc).
if(NOT FILES)
  message(FATAL_ERROR "usage: cmake -DFILES=path[;path...] -P check_no_encoder.cmake")
endif()
find_program(NM nm REQUIRED)
foreach(f IN LISTS FILES)
  execute_process(COMMAND "${NM}" -C "${f}" OUTPUT_VARIABLE out ERROR_VARIABLE nm_err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nm failed on ${f}: ${nm_err}")
  endif()
  string(REGEX MATCHALL "[^\n]*(RangeEncode|udc_range_encode|EncodeStream)[^\n]*" hits "${out}")
  if(hits)
    message(FATAL_ERROR "${f} contains the range encoder: ${hits}")
  endif()
  message(STATUS "no encoder in ${f}")
endforeach()
