#!/usr/bin/env bash
# Build the peer to beat, llama.cpp's own llama-server (and llama-bench), from the llama.cpp that
# llama-cpp-python 0.3.36 vendors: the same kernels our engine runs. Built into the user cache dir,
# never into the repository; about 25 minutes on 2 cores, so never part of the test run.
#   benchmarks/build_peer.sh   ->   ${CODEASSIST_CACHE_DIR:-~/.cache/codeassist}/peer/bin/llama-server
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${CODEASSIST_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/codeassist}
PEER="$CACHE/peer"
mkdir -p "$PEER/src" "$PEER/bin"
if [ -x "$PEER/bin/llama-server" ]; then
  echo "already built: $PEER/bin/llama-server" >&2
  exit 0
fi
PIP=${PIP:-.venv/bin/pip}
[ -x "$PIP" ] || PIP=pip
"$PIP" download --no-deps --no-binary llama-cpp-python --dest "$PEER/src" llama-cpp-python==0.3.36 >&2
tar -xzf "$PEER"/src/llama_cpp_python-0.3.36.tar.gz -C "$PEER/src"
SRC="$PEER/src/llama_cpp_python-0.3.36/vendor/llama.cpp"
cmake -S "$SRC" -B "$PEER/build" -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF >&2
cmake --build "$PEER/build" --target llama-server llama-bench -j"$(nproc)" >&2
cp "$PEER/build/bin/llama-server" "$PEER/build/bin/llama-bench" "$PEER/bin/"
echo "built $PEER/bin/llama-server" >&2
