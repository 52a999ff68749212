#!/usr/bin/env bash
source ./lib/common.sh
. "$HOME/.profile"

log_info() {
  echo "[info] $*" >&2
}

function build_project {
  local target="$1"
  log_info "building $target"
  make -C "$target" all
}

build_project "src"
