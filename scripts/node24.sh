# Puts Node.js >= 24 first on PATH. Source it: `. scripts/node24.sh`.
# Machines here ship an older Node; when the installed one is older than 24, the `node@24` package from the
# npm registry is installed once into a cache folder and its bin is prepended to PATH.
lumyn_node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$lumyn_node_major" -lt 24 ]; then
  lumyn_node_dir="${LUMYN_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lumyn/node24}"
  if [ ! -x "$lumyn_node_dir/node_modules/.bin/node" ]; then
    mkdir -p "$lumyn_node_dir"
    npm install --prefix "$lumyn_node_dir" --no-audit --no-fund --loglevel=error node@24 >/dev/null
  fi
  PATH="$lumyn_node_dir/node_modules/.bin:$PATH"
  export PATH
fi
unset lumyn_node_major lumyn_node_dir
