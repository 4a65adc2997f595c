#!/usr/bin/env bash
# Installs what the end-to-end editor tests need into one folder (default: .editor-test at the
# repository root), skipping whatever is already there, so that a second run costs seconds:
#   - Debian packages: chromium for Playwright, and a compiler plus krb5 headers because
#     code-server's postinstall builds its native addons from source (no prebuilds are reachable);
#   - Node 24 (editor-client/setup-node.sh);
#   - code-server, whose VS Code is the editor under test.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir=${1:-$root/.editor-test}
CODE_SERVER_VERSION=4.139.1
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
export npm_config_cache=$dir/npm-cache

debs=(build-essential python3 libkrb5-dev chromium git curl ca-certificates)
if ! command -v chromium >/dev/null || ! dpkg -s "${debs[@]}" >/dev/null 2>&1; then
  echo "== apt: ${debs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
fi

PATH="$("$root/editor-client/setup-node.sh" "$dir"):$PATH"
export PATH
hash -r

if [ ! -f "$dir/code-server/.installed-$CODE_SERVER_VERSION" ]; then
  echo "== code-server $CODE_SERVER_VERSION (builds native addons: a few minutes)"
  rm -rf "$dir/code-server"
  # Without this, node-gyp takes ~/.npmrc's nodedir or downloads headers from the internet.
  export npm_config_nodedir=$dir/node
  if ! npm install -g --prefix "$dir/code-server" --foreground-scripts "code-server@$CODE_SERVER_VERSION" \
      >"$dir/code-server-install.log" 2>&1; then
    tail -40 "$dir/code-server-install.log" >&2
    exit 1
  fi
  touch "$dir/code-server/.installed-$CODE_SERVER_VERSION"
fi
