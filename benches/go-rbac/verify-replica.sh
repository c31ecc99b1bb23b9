#!/usr/bin/env bash
# Checks that the Go benchmark builds exactly the objects src/synthetic.rs builds (not just
# the same shape): compiles verify/synthetic_dump.rs (src/synthetic.rs with a stub `model`)
# with rustc against the serde_json of an existing `cargo build --release`, dumps N =
# 100, 10k, 100k both ways and compares.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DEPS=$HERE/../../target/release/deps
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
built=""
for rlib in "$DEPS"/libserde_json-*.rlib; do
  [ -e "$rlib" ] || continue
  if rustc --edition 2024 -O "$HERE/verify/synthetic_dump.rs" -o "$TMP/dump" -L "$DEPS" \
      --extern serde_json="$rlib" 2>"$TMP/rustc.log"; then built=1; break; fi
done
[ -n "$built" ] || { cat "$TMP/rustc.log" >&2; echo "run cargo build --release first" >&2; exit 1; }
cd "$HERE"
for n in 100 10000 100000; do
  "$TMP/dump" "$n" >"$TMP/rs.txt"
  SYNTHETIC_DUMP=$n go test -count=1 -v -run '^TestDump$' . | grep -Ev '^(ok|PASS|=== RUN|--- PASS)' >"$TMP/go.txt"
  if cmp -s "$TMP/rs.txt" "$TMP/go.txt"; then
    echo "N=$n: identical ($(( $(wc -l <"$TMP/go.txt") - 1 )) objects and the requester's groups)"
  else
    echo "N=$n: DIFFERENT"; diff "$TMP/rs.txt" "$TMP/go.txt" | head; exit 1
  fi
done
