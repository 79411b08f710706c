#!/bin/sh
# Builds notes.wasm from its C sources with the smcp C SDK (sdk/c/cc.sh), from any directory.
#   usage: tenants/notes/build.sh [OUTPUT.wasm]    (default: notes.wasm next to this script)
# tenants/build.py runs this and then pins the module's sha256 in tenant.toml.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
exec sh "$HERE/../../sdk/c/cc.sh" "${1:-$HERE/notes.wasm}" "$HERE/notes.c" "$HERE/store.c"
