#!/usr/bin/env bash
# Installs every Debian package mixnas needs. Idempotent: prints and installs only what is missing.
set -euo pipefail

PACKAGES=(
  # toolchain
  cmake ninja-build ccache g++ make pkg-config clang-format
  # cross toolchain and emulator for the aarch64 runtime/agent build
  g++-aarch64-linux-gnu gcc-aarch64-linux-gnu qemu-user
  # libraries
  libtorch-dev libeigen3-dev libyaml-cpp-dev libcli11-dev catch2 libomp-dev
  # headers of c10d's Gloo process group (data-parallel jobs, docs/distributed.md)
  libgloo-dev
  libflatbuffers-dev flatbuffers-compiler libcpp-httplib-dev nlohmann-json3-dev
  libbenchmark-dev libstb-dev libonnx-dev libprotobuf-dev protobuf-compiler
  # TLS of the agent and its client (OpenSSL is called directly for certificate pinning); the
  # openssl CLI makes the tests' certificates
  libssl-dev openssl
  # the Python module (python/) and the ecosystem tests: OpenCV's DNN runs the float ONNX; npm
  # (when present) fetches ONNX Runtime's CPU library (scripts/install_onnxruntime.sh)
  python3-dev pybind11-dev python3-numpy libopencv-dnn-dev
  # fuzzing and ARM throughput analysis
  clang llvm llvm-16  # llvm-mca-16: the device models prefer its Cortex-A55 model (docs/device_models.md)
  # data
  dataset-fashion-mnist
)

# arm64 multiarch packages for the aarch64 cross build (the agent links Debian's compiled
# cpp-httplib); they need the arm64 architecture added to dpkg.
ARM64_PACKAGES=(libcpp-httplib-dev:arm64 libssl-dev:arm64)

missing=()
for p in "${PACKAGES[@]}" "${ARM64_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# ONNX Runtime (not in Debian 12) into .deps/ through npm; optional: without npm or a reachable
# registry the ONNX Runtime tests report themselves skipped.
onnxruntime() {
  "$(dirname "$0")/install_onnxruntime.sh" || echo "bootstrap: ONNX Runtime not installed (optional)"
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all $(( ${#PACKAGES[@]} + ${#ARM64_PACKAGES[@]} )) packages present"
  onnxruntime
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "bootstrap: need root or sudo to install: ${missing[*]}" >&2; exit 1
  fi
fi

echo "bootstrap: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "bootstrap: adding the arm64 architecture to dpkg (multiarch, for the aarch64 build)"
  $SUDO dpkg --add-architecture arm64
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
onnxruntime
echo "bootstrap: done"
