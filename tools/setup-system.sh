#!/usr/bin/env bash
# Install the system packages the build needs (Debian/Ubuntu), only those missing.
#   bash tools/setup-system.sh        the build (cmake, g++, brotli, ...)
#   bash tools/setup-system.sh fuzz   also clang 19 with libFuzzer (`make fuzz`)
# onnxruntime's C/C++ headers are NOT installed here: runtime/CMakeLists.txt finds them
# or fetches Debian's libonnxruntime-dev into the build folder by itself.
set -euo pipefail
need=()
pkgs=(cmake g++ make libbrotli-dev pkg-config)
if [ "${1:-}" = "fuzz" ]; then
  pkgs+=(clang-19 libclang-rt-19-dev)
fi
for pkg in "${pkgs[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
