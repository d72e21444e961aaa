#!/bin/sh
# Packs what a lent GPU machine needs to run ember's CUDA checks into .device/:
# the ember and ember_tests binaries built here (build/, with the CUDA backend)
# and the Debian shared libraries they link that such a machine lacks (oneDNN,
# OpenBLAS, PCRE2, OpenMPI, ONNX, protobuf, cpp-httplib, ...). glibc, libstdc++
# and cuBLAS and NCCL are the machine's own (too big to carry); the CUDA runtime
# travels.
# Then scripts/device_check.sh runs there (see docs/CUDA.md).
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
out=.device
rm -rf "$out" && mkdir -p "$out/lib"
for bin in "$build/ember" "$build/tests/ember_tests"; do
  test -x "$bin" || { echo "device_pack: $bin is missing: build it first (ninja -C $build ember ember_tests)" >&2; exit 1; }
  strip -o "$out/$(basename "$bin")" "$bin"
done
# Every resolved library except the C runtime, the C++ runtime and CUDA's own.
ldd "$build/ember" "$build/tests/ember_tests" | awk '/=> \// {print $3}' | sort -u |
  grep -v -E '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so|/usr/local/cuda|libcuda\.so|libcublas|libnccl|libcudart' |
  while read -r lib; do cp -L "$lib" "$out/lib/"; done
# The CUDA runtime this build was compiled against (small; the machine may carry another).
cp -L /usr/local/cuda/lib64/libcudart.so.13 "$out/lib/"
tar -C "$out" -cJf "$out/lib.tar.xz" lib && rm -rf "$out/lib"
# The binaries hold the kernels for two GPU architectures: xz takes them from
# about 70 MB to 11, inside the tool's 64 MiB limit on what travels.
xz -T0 -6 "$out/ember" "$out/ember_tests"
cp scripts/device_check.sh "$out/"
du -sh "$out"/*
