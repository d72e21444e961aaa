# shellcheck shell=bash
# Configuring and building ember with CMake and Ninja. Needs common.sh.
#
#   ember_build BUILD_DIR [TARGET...] [-- CMAKE_ARGS...]
# configures BUILD_DIR (Release, Ninja) when it is new or was configured
# differently, then builds incrementally (all targets when none are given).

ember_build() {
  local dir="$1"; shift
  local targets=() cmake_args=()
  while [ "$#" -gt 0 ]; do
    if [ "$1" = "--" ]; then shift; cmake_args=("$@"); break; fi
    targets+=("$1"); shift
  done
  local cache="$dir/CMakeCache.txt"
  if [ -f "$cache" ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$cache"; then
    ember_warn "$dir was configured with another generator; reconfiguring it from scratch"
    rm -rf "$dir"
  fi
  # Reconfigure only when needed: Ninja reruns CMake itself when a CMakeLists changes.
  local reconfigure=0 a
  [ -f "$dir/build.ninja" ] || reconfigure=1
  grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$cache" 2>/dev/null || reconfigure=1
  for a in "${cmake_args[@]}"; do
    # -DNAME=VALUE must already be in the cache with that value.
    case "$a" in
      -D*=*) local kv="${a#-D}"; grep -qE "^${kv%%=*}:[A-Z]+=${kv#*=}\$" "$cache" 2>/dev/null || reconfigure=1 ;;
    esac
  done
  if [ "$reconfigure" -eq 1 ]; then
    cmake -S "$EMBER_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cmake_args[@]}" \
      || ember_die "cmake configure of $dir failed"
  fi
  ninja -C "$dir" "${targets[@]}" || ember_die "build in $dir failed"
}
