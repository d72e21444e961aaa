#!/usr/bin/env bash
# Builds the llama.cpp peer for bench/llamacpp_vs_ember.py: llama-bench (the
# timer) and llama-quantize (q4_0 GGUFs), CPU only, tuned for this host
# (-DGGML_NATIVE=ON, as ember's kernels are), from the llama.cpp that the
# llama-cpp-python sdist vendors. The sdist comes through pip, the one
# registry the benchmark hosts can reach, and pinning its version pins
# llama.cpp's (0.3.36 vendors ggml 0.25.3; the commit is printed at the end).
#
#   bench/llamacpp_setup.sh            # build into ~/.cache/ember (idempotent)
#
# Environment: PEERS_VENV (a venv with pip; default ~/.cache/ember/peers-venv),
# LLAMA_CPP_PYTHON_VERSION (default 0.3.36), EMBER_CACHE (default ~/.cache/ember),
# JOBS (default 2). Prints the two binaries' paths on its last two lines.
# The build runs under nice -n 19: the hosts are shared.
set -euo pipefail

CACHE=${EMBER_CACHE:-$HOME/.cache/ember}
VENV=${PEERS_VENV:-$CACHE/peers-venv}
VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
SRC=$CACHE/llama.cpp-src
BUILD=$CACHE/llama.cpp-build
JOBS=${JOBS:-2}

# 1. The source: the sdist, unpacked once (a stamp records which version).
if [[ ! -f $SRC/.ember-sdist-$VERSION ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$VENV/bin/pip" download "llama-cpp-python==$VERSION" --no-deps --no-binary :all: -d "$tmp" >&2
  rm -rf "$SRC" "$BUILD"
  mkdir -p "$SRC"
  tar xzf "$tmp"/llama_cpp_python-"$VERSION".tar.gz -C "$SRC" --strip-components=1
  touch "$SRC/.ember-sdist-$VERSION"
fi
LLAMA=$SRC/vendor/llama.cpp

# 2. Configure once: CPU only, no tests/examples/server, no network code
# (LLAMA_CURL is the older name of the download switch, LLAMA_OPENSSL the newer;
# cmake warns about whichever this version lacks, harmlessly).
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  cmake -S "$LLAMA" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_BLAS=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_TOOLS=ON >&2
fi

# 3. Build the two targets only (make is a no-op when they are up to date).
nice -n 19 cmake --build "$BUILD" -j"$JOBS" --target llama-bench llama-quantize >&2
echo "$BUILD/bin/llama-bench"
echo "$BUILD/bin/llama-quantize"
