# Sourced, not run. Puts the project's pinned Node 24 and pnpm on PATH, installing them from the
# npm registry into $MQKIT_TOOLS (default <repo>/.tools) when they are missing: the machine's
# own Node may be an end-of-life 20.
MQKIT_NODE_VERSION=24.21.0
MQKIT_PNPM_VERSION=10.34.8

mqkit_toolchain() {
  local root tools
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  tools="${MQKIT_TOOLS:-$root/.tools}"
  if [ ! -x "$tools/node_modules/.bin/node" ] || [ ! -x "$tools/node_modules/.bin/pnpm" ] \
     || [ "$("$tools/node_modules/.bin/node" --version 2>/dev/null)" != "v$MQKIT_NODE_VERSION" ]; then
    echo "mqkit: installing node@$MQKIT_NODE_VERSION and pnpm@$MQKIT_PNPM_VERSION into $tools" >&2
    mkdir -p "$tools"
    [ -f "$tools/package.json" ] || echo '{"name":"mqkit-tools","private":true}' > "$tools/package.json"
    (cd "$tools" && npm install --no-audit --no-fund --loglevel=error --foreground-scripts \
      "node@$MQKIT_NODE_VERSION" "pnpm@$MQKIT_PNPM_VERSION" >&2)
  fi
  export PATH="$tools/node_modules/.bin:$PATH"
}

# Node 22 LTS as well, for checking that the packages still run on it (CI runs the unit and
# conformance tests on both).
MQKIT_NODE22_VERSION=22.23.3

mqkit_node22_path() {
  local root dir
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  dir="${MQKIT_TOOLS:-$root/.tools}/node22"
  if [ "$("$dir/node_modules/.bin/node" --version 2>/dev/null)" != "v$MQKIT_NODE22_VERSION" ]; then
    mkdir -p "$dir"
    [ -f "$dir/package.json" ] || echo '{"name":"mqkit-node22","private":true}' > "$dir/package.json"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "node@$MQKIT_NODE22_VERSION" >&2)
  fi
  echo "$dir/node_modules/.bin"
}
