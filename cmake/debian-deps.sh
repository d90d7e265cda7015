#!/usr/bin/env bash
# Installs the Debian 12 packages seqmix's builds need, when any is missing (run as root).
# Usage: source cmake/debian-deps.sh; seqmix_install_deps [extra packages...]
seqmix_install_deps() {
  local pkgs=(build-essential cmake pkg-config ccache libxsimd-dev libeigen3-dev catch2 libbenchmark-dev "$@")
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "seqmix: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
# Builds go through ccache when it is there.
seqmix_cmake_launcher() {
  command -v ccache >/dev/null && echo "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"
}
