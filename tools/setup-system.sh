#!/usr/bin/env bash
# Install the system packages the build needs (Debian/Ubuntu), only those missing.
# onnxruntime's C/C++ headers are NOT installed here: runtime/CMakeLists.txt finds them
# or fetches Debian's libonnxruntime-dev into the build folder by itself.
set -euo pipefail
need=()
for pkg in cmake g++ make libbrotli-dev pkg-config; do
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
