#!/bin/sh
# Compiles and links a smcp-v1 tenant module with the SDK, reproducibly.
#   usage: sdk/c/cc.sh OUTPUT.wasm SOURCE.c [MORE.c ...]
# Uses the PyPI `ziglang` package's clang (`python -m ziglang cc`); set PYTHON to choose the
# interpreter that has it. Freestanding wasm32: the module imports only from "smcp" (no WASI).
# -g0 and --strip-all keep paths and debug info out, so the same sources and zig version give
# the same bytes in any directory.
set -eu
if [ "$#" -lt 2 ]; then
    echo "usage: $0 OUTPUT.wasm SOURCE.c [MORE.c ...]" >&2
    exit 2
fi
SDK_DIR=$(cd "$(dirname "$0")" && pwd)
OUT=$1
shift
# zig keeps a compilation cache; without HOME (systemd units, minimal CI shells) it needs a path.
if [ -z "${ZIG_GLOBAL_CACHE_DIR:-}" ] && [ -z "${HOME:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ]; then
    ZIG_GLOBAL_CACHE_DIR="${TMPDIR:-/tmp}/smcp-zig-cache-$(id -u)"
    export ZIG_GLOBAL_CACHE_DIR
fi
exec "${PYTHON:-python3}" -m ziglang cc \
    --target=wasm32-freestanding -mcpu=lime1 \
    -std=c11 -O2 -g0 -ffreestanding -nostdlib \
    -Wall -Wextra -Wshadow -Wstrict-prototypes \
    -I"$SDK_DIR" \
    -Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=131072 \
    -o "$OUT" \
    "$@" \
    "$SDK_DIR/smcp.c" "$SDK_DIR/json_read.c" "$SDK_DIR/json_write.c" "$SDK_DIR/number.c" \
    "$SDK_DIR/server.c" "$SDK_DIR/dispatch.c" "$SDK_DIR/sha256.c"
