# Finds a libonnxruntime to link the C++ example udc_run against and defines the imported
# target udc::onnxruntime (and UDC_ORT_LINK_DIR for the rpath). Order:
#   1. ORT_LIB_DIR (cache variable, else environment variable);
#   2. an installed onnxruntime, by CMake's usual means: find_library(onnxruntime) under
#      ONNXRUNTIME_ROOT, CMAKE_PREFIX_PATH and the system folders (Debian's
#      libonnxruntime-dev, a release archive's lib/);
#   3. the onnxruntime Python package of Python3_EXECUTABLE (else python3 on PATH):
#      <site-packages>/onnxruntime/capi holds libonnxruntime.so.X.Y.Z.
# The wheel's library has SONAME libonnxruntime.so.1 but ships no such file: we link
# through symlinks libonnxruntime.so and libonnxruntime.so.1 in <build>/ort-lib, which is
# also the program's rpath. Nothing found: udc_run is skipped with a message.
set(ORT_LIB_DIR "" CACHE PATH "Folder holding libonnxruntime.so* (empty: ask Python's onnxruntime)")

set(_udc_lib_dir "${ORT_LIB_DIR}")
if(NOT _udc_lib_dir AND DEFINED ENV{ORT_LIB_DIR})
  set(_udc_lib_dir "$ENV{ORT_LIB_DIR}")
endif()
set(ONNXRUNTIME_ROOT "" CACHE PATH "An onnxruntime release archive or install prefix (for udc_run)")
if(NOT _udc_lib_dir)
  find_library(_udc_installed_ort onnxruntime HINTS "${ONNXRUNTIME_ROOT}/lib" "${ONNXRUNTIME_ROOT}/lib64")
  if(_udc_installed_ort)
    get_filename_component(_udc_lib_dir "${_udc_installed_ort}" DIRECTORY)
  endif()
endif()
if(NOT _udc_lib_dir)
  set(_udc_py "${Python3_EXECUTABLE}")
  if(NOT _udc_py)
    find_program(_udc_py_found NAMES python3 python)
    set(_udc_py "${_udc_py_found}")
  endif()
  if(_udc_py)
    execute_process(
      COMMAND "${_udc_py}" -c "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))"
      RESULT_VARIABLE _udc_rc OUTPUT_VARIABLE _udc_out ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(_udc_rc EQUAL 0 AND EXISTS "${_udc_out}/capi")
      set(_udc_lib_dir "${_udc_out}/capi")
    endif()
  endif()
endif()

set(_udc_ort_real "")
if(_udc_lib_dir)
  file(GLOB _udc_cands "${_udc_lib_dir}/libonnxruntime.so.[0-9]*")
  list(SORT _udc_cands)
  list(REVERSE _udc_cands)  # longest version string first: libonnxruntime.so.1.31.1
  if(_udc_cands)
    list(GET _udc_cands 0 _udc_ort_real)
  elseif(EXISTS "${_udc_lib_dir}/libonnxruntime.so")
    set(_udc_ort_real "${_udc_lib_dir}/libonnxruntime.so")
  endif()
endif()

if(_udc_ort_real)
  get_filename_component(_udc_ort_real "${_udc_ort_real}" REALPATH)
  set(UDC_ORT_LINK_DIR "${CMAKE_BINARY_DIR}/ort-lib")
  file(MAKE_DIRECTORY "${UDC_ORT_LINK_DIR}")
  foreach(_name libonnxruntime.so libonnxruntime.so.1)
    file(REMOVE "${UDC_ORT_LINK_DIR}/${_name}")
    file(CREATE_LINK "${_udc_ort_real}" "${UDC_ORT_LINK_DIR}/${_name}" SYMBOLIC)
  endforeach()
  add_library(udc::onnxruntime SHARED IMPORTED)
  set_target_properties(udc::onnxruntime PROPERTIES
    IMPORTED_LOCATION "${UDC_ORT_LINK_DIR}/libonnxruntime.so"
    IMPORTED_SONAME "libonnxruntime.so.1")
  message(STATUS "udc_run: linking ${_udc_ort_real} (via ${UDC_ORT_LINK_DIR})")
else()
  message(STATUS "udc_run: skipped, no libonnxruntime found (install libonnxruntime-dev, or set "
                 "ONNXRUNTIME_ROOT to a release archive, ORT_LIB_DIR, or Python3_EXECUTABLE to a Python with onnxruntime)")
endif()
