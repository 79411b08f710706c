#!/bin/sh
# Builds notes.wasm from its C sources with the smcp C SDK (sdk/c/cc.sh), from any directory
# (and from a copy of this folder anywhere, with smcp-box installed).
#   usage: tenants/notes/build.sh [OUTPUT.wasm]    (default: notes.wasm next to this script)
# tenants/build.py runs this and then pins the module's sha256 in tenant.toml.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
# The repository's SDK, or (for a copy of this folder outside the repository) the one that
# ships in the smcp-box wheel.
CC_SH="$HERE/../../sdk/c/cc.sh"
if [ ! -f "$CC_SH" ]; then
    CC_SH=$("${PYTHON:-python3}" -c 'import pathlib, smcp_box_sdk; print(pathlib.Path(smcp_box_sdk.__file__).parent / "c" / "cc.sh")')
fi
exec sh "$CC_SH" "${1:-$HERE/notes.wasm}" "$HERE/notes.c" "$HERE/store.c"
