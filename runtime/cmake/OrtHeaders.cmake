# Finds onnxruntime's C/C++ headers and sets UDC_ORT_INCLUDE_DIR (the folder holding
# onnxruntime_cxx_api.h). The onnxruntime wheel on PyPI has none. Order:
#   1. ORT_INCLUDE_DIR (cache variable, else environment variable);
#   2. installed headers: /usr/include/onnxruntime, /usr/local/include/onnxruntime;
#   3. scripts/fetch-ort-headers.sh: Debian 13's libonnxruntime-dev (1.21.0) fetched with
#      apt-get from this machine's own Debian mirror, with private apt state, unpacked
#      into the build folder (idempotent; skipped when already there).
set(ORT_INCLUDE_DIR "" CACHE PATH "Folder holding onnxruntime_cxx_api.h (empty: search, then fetch)")

function(_udc_ort_headers_in dir out)
  set(${out} "" PARENT_SCOPE)
  if(dir AND EXISTS "${dir}/onnxruntime_cxx_api.h")
    set(${out} "${dir}" PARENT_SCOPE)
  elseif(dir AND EXISTS "${dir}/onnxruntime/onnxruntime_cxx_api.h")
    set(${out} "${dir}/onnxruntime" PARENT_SCOPE)
  endif()
endfunction()

set(UDC_ORT_INCLUDE_DIR "")
set(_udc_ort_given "${ORT_INCLUDE_DIR}")
if(NOT _udc_ort_given AND DEFINED ENV{ORT_INCLUDE_DIR})
  set(_udc_ort_given "$ENV{ORT_INCLUDE_DIR}")
endif()

if(_udc_ort_given)
  _udc_ort_headers_in("${_udc_ort_given}" UDC_ORT_INCLUDE_DIR)
  if(NOT UDC_ORT_INCLUDE_DIR)
    message(FATAL_ERROR "ORT_INCLUDE_DIR=${_udc_ort_given} holds no onnxruntime_cxx_api.h")
  endif()
else()
  foreach(_dir /usr/include/onnxruntime /usr/local/include/onnxruntime)
    _udc_ort_headers_in("${_dir}" UDC_ORT_INCLUDE_DIR)
    if(UDC_ORT_INCLUDE_DIR)
      break()
    endif()
  endforeach()
endif()

if(NOT UDC_ORT_INCLUDE_DIR)
  set(_udc_ort_dest "${CMAKE_BINARY_DIR}/_deps/onnxruntime-headers")
  _udc_ort_headers_in("${_udc_ort_dest}/usr/include/onnxruntime" UDC_ORT_INCLUDE_DIR)
  if(NOT UDC_ORT_INCLUDE_DIR)
    if(NOT UDC_FETCH_ORT_HEADERS)
      message(FATAL_ERROR
        "onnxruntime headers not found and UDC_FETCH_ORT_HEADERS is OFF. Set ORT_INCLUDE_DIR to the "
        "folder holding onnxruntime_cxx_api.h, or -DUDC_BUILD_ORT_OPS=OFF to build the core only.")
    endif()
    message(STATUS "onnxruntime headers: fetching Debian's libonnxruntime-dev into ${_udc_ort_dest}")
    execute_process(
      COMMAND sh "${CMAKE_CURRENT_SOURCE_DIR}/scripts/fetch-ort-headers.sh" "${_udc_ort_dest}"
      RESULT_VARIABLE _udc_rc
      ERROR_VARIABLE _udc_err)
    if(NOT _udc_rc EQUAL 0)
      message(FATAL_ERROR
        "Could not fetch onnxruntime headers (scripts/fetch-ort-headers.sh exited ${_udc_rc}):\n${_udc_err}\n"
        "Set ORT_INCLUDE_DIR (cache or environment variable) to a folder holding onnxruntime_cxx_api.h "
        "(onnxruntime 1.21 or newer), or -DUDC_BUILD_ORT_OPS=OFF to build the core only.")
    endif()
    _udc_ort_headers_in("${_udc_ort_dest}/usr/include/onnxruntime" UDC_ORT_INCLUDE_DIR)
    if(NOT UDC_ORT_INCLUDE_DIR)
      message(FATAL_ERROR "fetch-ort-headers.sh succeeded but ${_udc_ort_dest} has no onnxruntime_cxx_api.h")
    endif()
  endif()
endif()

file(STRINGS "${UDC_ORT_INCLUDE_DIR}/onnxruntime_c_api.h" _udc_api_line REGEX "^#define ORT_API_VERSION [0-9]+")
message(STATUS "onnxruntime headers: ${UDC_ORT_INCLUDE_DIR} (${_udc_api_line})")
