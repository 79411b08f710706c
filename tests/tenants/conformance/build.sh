#!/bin/sh
# Builds conformance.wasm from its C sources with the smcp C SDK (sdk/c/cc.sh), from any directory.
#   usage: tests/tenants/conformance/build.sh [OUTPUT.wasm]   (default: conformance.wasm here)
# After a rebuild, pin the new hash: python tests/conformance/pin_tenant.py
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
exec sh "$HERE/../../../sdk/c/cc.sh" "${1:-$HERE/conformance.wasm}" \
    "$HERE/conformance.c" "$HERE/content.c" "$HERE/interactive.c" "$HERE/mrtr.c" "$HERE/crypto.c" \
    "$HERE/tasks.c"
