#!/usr/bin/env bash
# The GPU check of the CUDA decoder, in one command, on a machine with an NVIDIA GPU:
#
#   bash tools/gpu_check.sh            # [--models fmnist,ppocr_det] [--repeat 5] [--out FILE]
#
# 1. a separate virtual environment (.venv-gpu) with onnxruntime-gpu (CUDA 13 and cuDNN 9
#    from the registry's nvidia-* wheels) instead of onnxruntime, and the project's other
#    dependencies;
# 2. the library built with the CUDA decoder required (-DUDC_CUDA=ON) for this GPU's
#    architecture, into runtime/build-cuda;
# 3. tests/test_cuda.py (golden vectors and random blobs on the GPU, the decode op under
#    CUDAExecutionProvider), then tools/gpu_check.py (zoo models, throughput, session times).
# Needs: nvcc (CUDA >= 13.0), an NVIDIA driver for CUDA 13 (>= 580), python3 >= 3.11, cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_GPU="${ORT_GPU:-onnxruntime-gpu[cuda,cudnn]==1.31.1}"
VENV=.venv-gpu
PY="$VENV/bin/python"

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader || true
if [ ! -x "$PY" ]; then
  bash tools/setup-system.sh
  python3 -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q -c requirements/constraints.txt onnx onnx-graphsurgeon numpy brotli click rich \
    pytest hypothesis pillow "$ORT_GPU"
  # ppocr_det ships inside rapidocr-onnxruntime, which requires the CPU onnxruntime: install
  # it without dependencies and its other dependencies by hand (inputs come from scikit-image).
  "$PY" -m pip install -q -c requirements/constraints.txt opencv-python-headless pyclipper pyyaml shapely six tqdm \
    scikit-image scikit-learn
  "$PY" -m pip install -q --no-deps rapidocr-onnxruntime==1.4.4
  "$PY" -m pip install -q --no-deps -e .
fi
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.' || true)
cmake -S runtime -B runtime/build-cuda -DCMAKE_BUILD_TYPE=Release -DUDC_CUDA=ON \
  ${ARCH:+-DCMAKE_CUDA_ARCHITECTURES=$ARCH} -DPython3_EXECUTABLE="$(realpath "$PY")" >/dev/null
cmake --build runtime/build-cuda -j "$(nproc)" --target onnx_udc
export ONNX_UDC_LIBRARY="$PWD/runtime/build-cuda/libonnx_udc.so"
"$PY" -m pytest -q tests/test_cuda.py -rs
"$PY" tools/gpu_check.py "$@"
