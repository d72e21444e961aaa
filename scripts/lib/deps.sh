# shellcheck shell=bash
# The Debian packages ember builds and tests with (one list, used by every script),
# and their installation. Needs common.sh.

EMBER_DEBIAN_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libdnnl-dev libopenblas-dev           # GEMM (oneDNN sgemm; CBLAS dgemm)
  ocl-icd-opencl-dev                    # dnnl-config.cmake finds OpenCL (a Recommends only)
  nlohmann-json3-dev libcli11-dev libpcre2-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libopenmpi-dev openmpi-bin            # distributed training (ember/dist) and its mpirun tests
  libonnx-dev libprotobuf-dev           # ONNX export (ember/graph/onnx_*): protobuf classes, checker
  python3 python3-venv                  # the peers venv (PyTorch etc.) for conformance tests
  chromium                              # the browser the web chat page test drives (Playwright)
)

# Prints the packages among the arguments that are not installed.
ember_missing_debian_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || printf '%s\n' "$p"
  done
}

# Installs EMBER_DEBIAN_PACKAGES plus any extra packages given, with apt-get
# (through sudo when not root); runs apt-get update only when something is missing.
ember_install_debian_packages() {
  command -v dpkg-query >/dev/null 2>&1 || ember_die "dpkg-query not found: ember's scripts expect Debian 12 (or a derivative)"
  local missing
  mapfile -t missing < <(ember_missing_debian_packages "${EMBER_DEBIAN_PACKAGES[@]}" "$@")
  if [ "${#missing[@]}" -eq 0 ]; then
    ember_log "Debian packages: all ${#EMBER_DEBIAN_PACKAGES[@]} installed"
    return 0
  fi
  ember_log "Debian packages: installing ${missing[*]}"
  ember_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  ember_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}
