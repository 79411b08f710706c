#!/bin/sh
# Builds utils.wasm from its C sources with the smcp C SDK (sdk/c/cc.sh), from any directory.
#   usage: tenants/utils/build.sh [OUTPUT.wasm]    (default: utils.wasm next to this script)
# tenants/build.py runs this and then pins the module's sha256 in tenant.toml.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
exec sh "$HERE/../../sdk/c/cc.sh" "${1:-$HERE/utils.wasm}" "$HERE/utils.c" "$HERE/hash.c" "$HERE/units.c" "$HERE/jsonpath.c"
