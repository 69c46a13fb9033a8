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
