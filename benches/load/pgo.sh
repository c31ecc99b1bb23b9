#!/usr/bin/env bash
# Profile-guided release build of scopegate. One command:
#
#   benches/load/pgo.sh [--force]   # prints the path of the built binary: target/pgo/release/scopegate
#
# The binary is reused when it is newer than every source (src/, Cargo.toml, Cargo.lock and the
# training scripts); --force builds and trains again anyway.
#
# 1. builds an instrumented release binary (-Cprofile-generate) in target/pgo-gen;
# 2. trains it: `scopegate serve` on policies/ plus 10,000 generated assignments and 2,000
#    generated SubjectAccessReview bodies, drawn with other seeds than the ones run.sh measures
#    with (so the profile is not fitted to the measured requests); HTTPS load with wrk (or every
#    body posted three times with preflight.py when wrk is missing) while a policy file is
#    rewritten every second, then a few seconds of the empty handler; stopped with SIGTERM,
#    which writes the profile;
# 3. merges the profile with llvm-profdata (rustup component llvm-tools, added if missing) and
#    builds the release binary with -Cprofile-use in target/pgo. The merged profile's path
#    holds its hash, so a new profile rebuilds every crate rather than reusing ones built
#    with an older profile.
# The profile only steers code layout and inlining: a stale or partial one costs speed, never
# correctness. About 10 minutes on 2 cores (two fat-LTO builds).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
ROOT=$(cd "$HERE/../.." && pwd)
GEN_DIR=$ROOT/target/pgo-gen
USE_DIR=$ROOT/target/pgo
PORT=${LOAD_PORT:-18443}
ADMIN_PORT=${LOAD_ADMIN_PORT:-19190}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/scopegate-pgo.XXXXXX")
SERVER_PID=""
RELOAD_PID=""
cleanup() {
  if [ -n "$RELOAD_PID" ]; then kill "$RELOAD_PID" 2>/dev/null || true; fi
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '== pgo: %s\n' "$*" >&2; }

FORCE=0
case "${1:-}" in
  --force) FORCE=1 ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac
OUT_BIN=$USE_DIR/release/scopegate
if [ "$FORCE" = 0 ] && [ -x "$OUT_BIN" ] && [ -z "$(find "$ROOT/src" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" \
    "$HERE/pgo.sh" "$HERE/lib.sh" "$HERE/gen.py" "$HERE/post-bodies.lua" "$ROOT/policies" -newer "$OUT_BIN" -print -quit)" ]; then
  say "$OUT_BIN is newer than every source: reused (--force to build again)"
  echo "$OUT_BIN"; exit 0
fi

# Sources changed after this moment make the next run build again.
: >"$WORK/started"

# ---- llvm-profdata, from the toolchain that builds ---------------------------------------------
sysroot=$(rustc --print sysroot)
host=$(rustc -vV | awk '/^host:/ {print $2}')
PROFDATA=$sysroot/lib/rustlib/$host/bin/llvm-profdata
if [ ! -x "$PROFDATA" ]; then
  say "adding the llvm-tools component (rustup component add llvm-tools)"
  rustup component add llvm-tools >&2
fi
[ -x "$PROFDATA" ] || { echo "llvm-profdata not found at $PROFDATA" >&2; exit 1; }

# ---- 1. instrumented build --------------------------------------------------------------------
say "building the instrumented binary (target/pgo-gen)"
(cd "$ROOT" && RUSTFLAGS="-Cprofile-generate=$GEN_DIR/build-profiles" CARGO_TARGET_DIR=$GEN_DIR \
  nice -n 10 cargo build --release --features bench-support --bin scopegate >&2)
BIN=$GEN_DIR/release/scopegate

# ---- 2. training ------------------------------------------------------------------------------
say "training on generated policy and bodies (seeds other than run.sh's)"
"$BIN" certs --out-dir "$WORK/certs" >/dev/null
POL=$WORK/policies
policy_dir "$POL" 10000 --seed 101
python3 "$HERE/gen.py" bodies "$WORK/bodies.jsonl" --count 2000 --seed 103 2>/dev/null
PROFILES=$WORK/profiles
mkdir -p "$PROFILES"

# train SECONDS [extra serve flags...]
train() {
  local secs=$1; shift
  ports_free "$PORT" "$ADMIN_PORT"
  LLVM_PROFILE_FILE="$PROFILES/scopegate-%p-%m.profraw" RUST_LOG=warn,scopegate=info "$BIN" serve \
    --policies "$POL" --cluster-resource-id "$CID" \
    --tls-cert-file "$WORK/certs/server.crt" --tls-private-key-file "$WORK/certs/server.key" \
    --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" "$@" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "$ADMIN_PORT" "$SERVER_PID" "$WORK/server.log" "instrumented scopegate"
  python3 "$HERE/gen.py" reload "$POL/azure/zz-reload.json" --every 1 --for "$secs" --tmp-dir "$WORK" 2>/dev/null &
  RELOAD_PID=$!
  local url=https://127.0.0.1:$PORT/authorize
  if command -v wrk >/dev/null; then
    BODIES=$WORK/bodies.jsonl wrk -t2 -c32 -d"${secs}s" --timeout 5s -s "$HERE/post-bodies.lua" "$url" >"$WORK/wrk.txt" 2>&1
    # A profile of failing requests would optimise the wrong code.
    if grep -qE 'Non-2xx|Socket errors' "$WORK/wrk.txt"; then
      echo "training load had errors:" >&2; cat "$WORK/wrk.txt" >&2; exit 1
    fi
  else
    for _ in 1 2 3; do
      python3 "$HERE/preflight.py" "$url" "$WORK/bodies.jsonl" "$WORK/certs/ca.crt" >/dev/null
    done
  fi
  wait "$RELOAD_PID" || { echo "the policy rewrite loop failed" >&2; exit 1; }
  RELOAD_PID=""
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || { echo "instrumented scopegate did not exit cleanly:" >&2; tail -20 "$WORK/server.log" >&2; exit 1; }
  SERVER_PID=""
}
train 8
train 3 --benchmark-empty-handler
ls "$PROFILES"/*.profraw >/dev/null 2>&1 || { echo "training wrote no profile" >&2; exit 1; }

# ---- 3. merge and optimised build --------------------------------------------------------------
mkdir -p "$USE_DIR/profiles"
"$PROFDATA" merge -o "$WORK/merged.profdata" "$PROFILES"/*.profraw
hash=$(sha256sum "$WORK/merged.profdata" | cut -c1-16)
PROFILE=$USE_DIR/profiles/$hash.profdata
mv "$WORK/merged.profdata" "$PROFILE"
# Keep only the newest profile.
find "$USE_DIR/profiles" -name '*.profdata' ! -name "$hash.profdata" -delete
say "building with the profile (target/pgo, profile $hash)"
(cd "$ROOT" && RUSTFLAGS="-Cprofile-use=$PROFILE" CARGO_TARGET_DIR=$USE_DIR \
  nice -n 10 cargo build --release --features bench-support --bin scopegate >&2)
touch -r "$WORK/started" "$OUT_BIN"
echo "$OUT_BIN"
