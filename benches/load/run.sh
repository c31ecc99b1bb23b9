#!/usr/bin/env bash
# HTTP load test of `scopegate serve`. One command:
#
#   benches/load/run.sh [--duration SECONDS] [--connections N] [--repeat N] [--install-oha] [--oha-only]
#
# 1. builds scopegate (release) and finds a load generator: wrk (installed from Debian if
#    missing); oha (`cargo install oha --locked`) if wrk cannot be had, or with
#    --install-oha / when oha is already on PATH, for the mutual-TLS runs (wrk cannot
#    present a client certificate);
# 2. generates certificates, a policy directory (policies/ plus 10,000 generated role
#    assignments) and 2,000 real SubjectAccessReview bodies (gen.py);
# 3. runs, each on 127.0.0.1 for a bounded time, with keep-alive HTTPS and N connections:
#      scopegate          RUST_LOG=warn,scopegate=info (no audit lines)
#      scopegate+audit    default log level: one audit line per decision, to a file
#      empty              --benchmark-empty-handler: same listener/TLS/HTTP, fixed answer
#      scopegate+reload   a policy file rewritten every second during the run
#      (oha present) scopegate and empty again with mutual TLS
#    With --repeat N (LOAD_REPEAT), scopegate and empty run N times alternately and the
#    summary gives each pair's ratio and the medians: the machine's speed drifts, and a
#    ratio is only fair between runs next to each other.
#    Before each decision run every body is posted once (preflight.py) and the decision mix
#    and a few fixed answers are checked;
# 4. writes target/load/summary.md (and the raw outputs next to it) and prints the table.
#    Exits non-zero if any run had errors or non-2xx answers, or a check failed.
#
# Nothing is pinned by default: on a 2-core machine the load generator and the server share
# the cores, so the numbers are a lower bound for the server and the ratio to `empty` is what
# to read. LOAD_PIN=1 puts the server on CPU 0 and the generator on CPU 1 (taskset): each
# server has one core to itself, so throughput is its own per-request cost and latency is
# free of the generator's scheduling (with LOAD_THREADS=1 for wrk).
#
# LOAD_PAUSE_MS=N (wrk) has each connection pause N ms before each request (paced-bodies.lua),
# so the offered rate is about connections × 1000 / (N + latency) requests per second, under
# what the server can serve: p99 and reloads are then measured with room to spare, as
# kube-apiserver drives a webhook, instead of at saturation. The ratio to `empty` then compares
# two paced servers and says little. (oha, for the mutual-TLS runs: `-q` at that most.)
#
# LOAD_PGO=1 measures the profile-guided build (pgo.sh: trained on other generated policy and
# bodies, about 10 minutes to build) instead of `cargo build --release`; both servers of
# every pair are that binary.
set -euo pipefail

DURATION=${LOAD_DURATION:-10}
CONNECTIONS=${LOAD_CONNECTIONS:-32}
THREADS=${LOAD_THREADS:-2}
PORT=${LOAD_PORT:-18443}
ADMIN_PORT=${LOAD_ADMIN_PORT:-19190}
ASSIGNMENTS=${LOAD_ASSIGNMENTS:-10000}
PIN=${LOAD_PIN:-0}
PGO=${LOAD_PGO:-0}
PAUSE=${LOAD_PAUSE_MS:-0}
[[ "$PAUSE" =~ ^[0-9]+$ ]] || { echo "LOAD_PAUSE_MS must be a whole number of milliseconds" >&2; exit 2; }
SERVER_PIN=(); CLIENT_PIN=()
if [ "$PIN" = 1 ]; then
  command -v taskset >/dev/null || { echo "LOAD_PIN=1 needs taskset (util-linux)" >&2; exit 2; }
  SERVER_PIN=(taskset -c 0); CLIENT_PIN=(taskset -c 1)
fi
NBODIES=${LOAD_BODIES:-2000}
REPEAT=${LOAD_REPEAT:-1}
WARMUP=2
INSTALL_OHA=0
OHA_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --install-oha) INSTALL_OHA=1; shift ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --oha-only) OHA_ONLY=1; INSTALL_OHA=1; shift ;;
    -h|--help) sed -n '2,/^set -euo pipefail/{/^#/p}' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
if [ "$DURATION" -gt 20 ] || [ "$DURATION" -lt 1 ]; then
  echo "--duration must be 1..20 seconds" >&2; exit 2
fi
if ! [[ "$REPEAT" =~ ^[1-5]$ ]]; then
  echo "--repeat must be 1..5" >&2; exit 2
fi
# Paced (LOAD_PAUSE_MS): wrk's script, and the most requests per second the connections offer.
WRK_SCRIPT=post-bodies.lua OFFERED=0
if [ "$PAUSE" -gt 0 ]; then WRK_SCRIPT=paced-bodies.lua OFFERED=$((CONNECTIONS * 1000 / PAUSE)); fi

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$ROOT/target/load
WORK=$(mktemp -d "${TMPDIR:-/tmp}/scopegate-load.XXXXXX")
SERVER_PID=""
RELOAD_PID=""
FAILED=0

cleanup() {
  if [ -n "$RELOAD_PID" ]; then kill "$RELOAD_PID" 2>/dev/null || true; fi
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "run.sh: command failed at line $LINENO: $BASH_COMMAND" >&2' ERR
say() { printf '== %s\n' "$*" >&2; }
fail() { printf 'FAIL: %s\n' "$*" >&2; FAILED=1; }

# ---- 1. build and tools ---------------------------------------------------------------------
if [ "$PGO" = 1 ]; then
  say "building scopegate (release, profile-guided: pgo.sh)"
  BIN=$("$HERE/pgo.sh")
else
  say "building scopegate (release)"
  (cd "$ROOT" && nice -n 10 cargo build --release --features bench-support --bin scopegate)
  BIN=$ROOT/target/release/scopegate
fi
# The hidden ceiling flag: clap names the first argument it does not know.
probe=$("$BIN" serve --benchmark-empty-handler --no-such-flag-probe 2>&1 || true)
if grep -q "unexpected argument '--benchmark-empty-handler'" <<<"$probe"; then
  echo "$BIN does not accept --benchmark-empty-handler; rebuild from current source" >&2; exit 1
fi

find_oha() { command -v oha || { [ -x "$HOME/.cargo/bin/oha" ] && echo "$HOME/.cargo/bin/oha"; } || true; }
install_oha() {
  say "installing oha (cargo install oha --locked; several minutes on 2 cores)"
  nice -n 10 cargo install oha --locked >&2
}
WRK=""
if [ "$OHA_ONLY" = 0 ]; then
  WRK=$(command -v wrk || true)
  if [ -z "$WRK" ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    say "installing wrk (apt-get install -y wrk)"
    if DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >"$WORK/apt.log" 2>&1 ||
       { apt-get update >>"$WORK/apt.log" 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >>"$WORK/apt.log" 2>&1; }; then
      WRK=$(command -v wrk || true)
    else
      tail -3 "$WORK/apt.log" >&2
    fi
  fi
  [ -n "$WRK" ] || { say "wrk unavailable: using oha for every run"; INSTALL_OHA=1; }
fi
OHA=$(find_oha)
if [ -z "$OHA" ] && [ "$INSTALL_OHA" = 1 ]; then install_oha; OHA=$(find_oha); fi
if [ -z "$WRK" ] && [ -z "$OHA" ]; then echo "no load generator (wrk or oha) could be had" >&2; exit 1; fi

# ---- 2. inputs --------------------------------------------------------------------------------
say "generating certificates, policy and request bodies in $WORK"
rm -rf "$OUT"; mkdir -p "$OUT"
CERTS=$WORK/certs
"$BIN" certs --out-dir "$CERTS" >/dev/null
POL=$WORK/policies
policy_dir "$POL" "$ASSIGNMENTS"
BODIES=$OUT/bodies.jsonl
python3 "$HERE/gen.py" bodies "$BODIES" --count "$NBODIES" 2>"$WORK/bodies.txt"
cat "$WORK/bodies.txt" >&2
"$BIN" validate --policies "$POL" --cluster-resource-id "$CID" | tee "$WORK/validate.txt" >&2

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- 3. runs ----------------------------------------------------------------------------------

# start_server NAME RUST_LOG MTLS [extra serve flags...]   (RUST_LOG "-" = unset: default info)
start_server() {
  local name=$1 log=$2 mtls=$3; shift 3
  ports_free "$PORT" "$ADMIN_PORT"
  local args=(serve --policies "$POL" --cluster-resource-id "$CID"
    --tls-cert-file "$CERTS/server.crt" --tls-private-key-file "$CERTS/server.key"
    --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT")
  [ "$mtls" = 1 ] && args+=(--client-ca-file "$CERTS/ca.crt")
  if [ "$log" = "-" ]; then
    env -u RUST_LOG "${SERVER_PIN[@]}" "$BIN" "${args[@]}" "$@" >"$WORK/$name.server.log" 2>&1 &
  else
    RUST_LOG=$log "${SERVER_PIN[@]}" "$BIN" "${args[@]}" "$@" >"$WORK/$name.server.log" 2>&1 &
  fi
  SERVER_PID=$!
  wait_ready "$ADMIN_PORT" "$SERVER_PID" "$WORK/$name.server.log" "scopegate ($name)"
}

stop_server() {
  local name=$1
  curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" >"$OUT/$name.metrics.txt" || true
  kill "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  # The audit-log run writes hundreds of MB: keep its size and its first lines only.
  local f=$WORK/$name.server.log
  printf '# %s lines, %s bytes; first 200 lines:\n' "$(wc -l <"$f")" "$(wc -c <"$f")" >"$OUT/$name.server.log"
  head -n 200 "$f" >>"$OUT/$name.server.log"
}

# drive NAME CLIENT SECONDS -> $OUT/NAME.CLIENT.txt, prints the row fragment
drive() {
  local name=$1 client=$2 secs=$3 out=$OUT/$1.$2.txt
  local url=https://127.0.0.1:$PORT/authorize
  if [ "$client" = wrk ]; then
    BODIES=$BODIES POST_BODIES=$HERE/post-bodies.lua PAUSE_MS=$PAUSE \
      timeout $((secs + 30)) "${CLIENT_PIN[@]}" "$WRK" -t"$THREADS" -c"$CONNECTIONS" -d"${secs}s" \
      --timeout 5s --latency -s "$HERE/$WRK_SCRIPT" "$url" >"$out" 2>&1 || true
    python3 "$HERE/report.py" wrk "$out"
  else
    local rate=()
    [ "$PAUSE" -gt 0 ] && rate=(-q "$OFFERED")
    timeout $((secs + 30)) "${CLIENT_PIN[@]}" "$OHA" --no-tui --output-format json -c "$CONNECTIONS" -z "${secs}s" "${rate[@]}" \
      --wait-ongoing-requests-after-deadline -m POST -H 'Content-Type: application/json' \
      -Z "$BODIES" --cacert "$CERTS/ca.crt" --cert "$CERTS/client.crt" --key "$CERTS/client.key" \
      "$url" >"$out" 2>"$out.stderr" || true
    python3 "$HERE/report.py" oha "$out"
  fi
}

metric() { python3 "$HERE/report.py" metric "$@"; }

# utime and stime of the server process, in clock ticks.
server_cpu_ticks() { awk '{print $14, $15}' "/proc/$SERVER_PID/stat" 2>/dev/null || echo 0 0; }

RESULTS=$OUT/results.tsv
: >"$RESULTS"

# run NAME CEILING CLIENT RUST_LOG MTLS KIND [extra serve flags...]
#   KIND: decide (preflight checks) | empty | reload
run() {
  local name=$1 ceiling=$2 client=$3 log=$4 mtls=$5 kind=$6; shift 6
  say "run $name ($client, $([ "$mtls" = 1 ] && echo mutual TLS || echo TLS), ${DURATION}s, $CONNECTIONS connections)"
  start_server "$name" "$log" "$mtls" "$@"
  local notes=""
  if [ "$kind" = empty ]; then
    curl -sf --cacert "$CERTS/ca.crt" --cert "$CERTS/client.crt" --key "$CERTS/client.key" \
      -H 'Content-Type: application/json' --data-binary "@$ROOT/tests/fixtures/requests/alice-create-deployment.json" \
      "https://127.0.0.1:$PORT/authorize" >"$OUT/$name.sample-answer.json" || fail "$name: sample request failed"
  else
    local pre
    if pre=$(python3 "$HERE/preflight.py" "https://127.0.0.1:$PORT/authorize" "$BODIES" "$CERTS/ca.crt" \
        "$CERTS/client.crt" "$CERTS/client.key" 2>"$OUT/$name.preflight.stderr"); then :; else
      fail "$name: preflight: $pre $(cat "$OUT/$name.preflight.stderr")"
    fi
    echo "$pre" >"$OUT/$name.preflight.txt"
  fi
  # The reload loop starts now and waits: Python's start-up falls in the warm-up.
  if [ "$kind" = reload ]; then
    rm -f "$WORK/go"
    python3 "$HERE/gen.py" reload "$POL/azure/zz-reload.json" --every 1 --for "$DURATION" --tmp-dir "$WORK" \
      --wait-for "$WORK/go" 2>"$OUT/$name.reload-loop.txt" &
    RELOAD_PID=$!
  fi
  # Warm-up (connections, TLS sessions, allocator), not counted.
  drive "$name.warmup" "$client" "$WARMUP" >/dev/null
  local gen0
  curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" >"$WORK/m0.txt" || fail "$name: /metrics unreachable"
  gen0=$(awk '$1 == "scopegate_policy_generation" {print $2}' "$WORK/m0.txt")
  if [ "$kind" = reload ]; then touch "$WORK/go"; fi
  local row user0 sys0 user1 sys1
  read -r user0 sys0 <<<"$(server_cpu_ticks)"
  row=$(drive "$name" "$client" "$DURATION")
  read -r user1 sys1 <<<"$(server_cpu_ticks)"
  if [ -n "$RELOAD_PID" ]; then wait "$RELOAD_PID" || fail "$name: reload loop failed"; RELOAD_PID=""; sleep 1; fi
  curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" >"$WORK/m.txt" || fail "$name: /metrics unreachable after the run"
  local gen1 reload_err
  gen1=$(awk '$1 == "scopegate_policy_generation" {print $2}' "$WORK/m.txt")
  reload_err=$(metric "$WORK/m.txt" scopegate_policy_reloads_total result=error)
  if [ "$kind" = reload ]; then
    local took
    # "policy loaded ... took_ms=N" lines (plain format, ANSI colours stripped); the first
    # one is the start-up load.
    took=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/$name.server.log" | grep -o 'took_ms=[0-9]*' | tail -n +2 |
      cut -d= -f2 | sort -n |
      awk '{a[NR]=$1} END {if (NR) printf "reload took %d ms median, %d ms max (%d reloads)", a[int((NR+1)/2)], a[NR], NR}' || true)
    notes="policy generation $gen0 → $gen1 during the run; $took; reload errors $reload_err"
    # Reloads run at the lowest CPU priority: with the server's one core saturated
    # (LOAD_PIN=1) each takes seconds instead of ~50 ms, so fewer generations are expected.
    # Reloads are background work: on saturated cores they wait for idle time, so a pinned
    # server or a large policy (each reload re-indexes all of it) publishes fewer generations.
    local want=$((DURATION / 2)); [ "$PIN" = 1 ] && want=2
    # 100k assignments: 0.6-3 s per reload on a saturated core (re-indexing all of it);
    # above 256 MiB of policy (~250k assignments) the file is also re-parsed at every reload.
    [ "$ASSIGNMENTS" -gt 20000 ] && want=2
    [ "$ASSIGNMENTS" -gt 200000 ] && want=1
    if [ $((${gen1:-0} - ${gen0:-0})) -lt "$want" ]; then fail "$name: policy generation only went $gen0 → $gen1"; fi
    if [ "$reload_err" != 0 ]; then fail "$name: $reload_err reload errors"; fi
  fi
  # The server's own CPU time (from /proc) over the measured run, per request: user space
  # (TLS, HTTP, decode, decision) and kernel (sockets, scheduling).
  local served tick_us
  served=$(cut -f1 <<<"$row")
  tick_us=$((1000000 / $(getconf CLK_TCK)))
  if [ "${served:-0}" -gt 0 ]; then
    notes="${notes:+$notes; }server CPU $(( (user1 - user0 + sys1 - sys0) * tick_us / served )) µs per request ($(( (user1 - user0) * tick_us / served )) user, $(( (sys1 - sys0) * tick_us / served )) system)"
  fi
  if [ "$kind" != empty ]; then
    # Decisions during the measured run only (the counters minus those before it).
    local mix="" k
    for k in allow deny no_opinion; do
      mix="$mix/$(( $(metric "$WORK/m.txt" scopegate_decisions_total decision=$k) - $(metric "$WORK/m0.txt" scopegate_decisions_total decision=$k) ))"
    done
    notes="${notes:+$notes; }decisions allow/deny/no-opinion ${mix#/}; preflight (each body once): $(sed 's/^PREFLIGHT //' "$OUT/$name.preflight.txt" 2>/dev/null)"
  fi
  stop_server "$name"
  if [ "$log" = "-" ]; then
    notes="${notes:+$notes; }server log $(head -1 "$OUT/$name.server.log" | sed 's/^# //; s/; first 200 lines://')"
  fi
  local label
  label="$client, $([ "$mtls" = 1 ] && echo mTLS || echo "TLS, no client cert")"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$ceiling" "$label" "$row" "$notes" >>"$RESULTS"
  local errs non2xx
  errs=$(cut -f7 <<<"$row"); non2xx=$(cut -f8 <<<"$row")
  if [ "$errs" != 0 ] || [ "$non2xx" != 0 ]; then fail "$name: $errs errors, $non2xx non-2xx"; fi
  if [ "$(cut -f1 <<<"$row")" = 0 ]; then fail "$name: no requests completed"; fi
}

if [ -n "$WRK" ]; then
  # wrk cannot present a client certificate: these servers run without --client-ca-file.
  if [ "$REPEAT" -gt 1 ]; then
    # Alternating pairs, so a drift in the machine's speed hits both sides of each ratio.
    for i in $(seq "$REPEAT"); do
      run "scopegate#$i" "empty#$i" wrk "warn,scopegate=info" 0 decide
      run "empty#$i" "empty#$i" wrk "warn,scopegate=info" 0 empty --benchmark-empty-handler
    done
    LAST_EMPTY="empty#$REPEAT"
  else
    run scopegate empty wrk "warn,scopegate=info" 0 decide
    run empty empty wrk "warn,scopegate=info" 0 empty --benchmark-empty-handler
    LAST_EMPTY=empty
  fi
  run scopegate+audit "$LAST_EMPTY" wrk "-" 0 decide
  run scopegate+reload "$LAST_EMPTY" wrk "warn,scopegate=info" 0 reload
fi
if [ -n "$OHA" ]; then
  run scopegate-mtls empty-mtls oha "warn,scopegate=info" 1 decide
  run empty-mtls empty-mtls oha "warn,scopegate=info" 1 empty --benchmark-empty-handler
fi

# ---- 4. report --------------------------------------------------------------------------------
{
  echo "Generated by \`benches/load/run.sh\` on $(date -u +%Y-%m-%dT%H:%M:%SZ)."
  echo
  echo "- scopegate $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet HEAD -- src 2>/dev/null || echo ' (+ uncommitted src changes)'), $([ "$PGO" = 1 ] && echo "profile-guided release build (LOAD_PGO=1, benches/load/pgo.sh)" || echo "release build")"
  echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $([ "$PIN" = 1 ] && echo "pinned: server on CPU 0, load generator on CPU 1 (LOAD_PIN=1)" || echo "nothing pinned: the load generator runs on the same cores as the server"); load average before the runs $LOADAVG_START, after $(cut -d' ' -f1-3 /proc/loadavg) (anything else running on the box competes too)"
  [ "$PAUSE" -gt 0 ] && echo "- **paced** (LOAD_PAUSE_MS=$PAUSE): each connection pauses $PAUSE ms before each request, at most $OFFERED requests/s offered; the ratios to empty compare two paced servers, read p99 and the reloads"
  echo "- load: ${DURATION}s per run after a ${WARMUP}s warm-up, $CONNECTIONS keep-alive connections over HTTPS to 127.0.0.1$([ -n "$WRK" ] && echo ", wrk $THREADS threads ($("$WRK" -v 2>&1 | head -1 | awk '{print $2}'))")$([ -n "$OHA" ] && echo ", oha ($("$OHA" --version | awk '{print $2}'))")"
  [ -n "$WRK" ] && echo "- wrk cannot present a client certificate, so its servers run without \`--client-ca-file\` (TLS, no mutual TLS)$([ -n "$OHA" ] && echo "; the -mtls runs use oha with a client certificate")"
  echo "- policy: policies/ + $ASSIGNMENTS generated Reader assignments ($(sed 's/^ok: //' "$WORK/validate.txt"))"
  echo "- bodies: $(cat "$WORK/bodies.txt"), cycled; decision cache off (default)"
  echo "- scopegate: RUST_LOG=warn,scopegate=info (no audit lines); scopegate+audit: default info level, audit log to a file"
  echo "- empty: \`--benchmark-empty-handler\` (same listener, TLS and HTTP stack; fixed answer, no decode or decision): the ceiling"
  echo "- scopegate+reload: a policy file rewritten every second during the run (each rewrite changes the policy, so every one publishes a new generation indexing all $ASSIGNMENTS+ assignments; unchanged files are not parsed again)"
} >"$WORK/env.txt"
echo
python3 "$HERE/report.py" summary "$RESULTS" "$WORK/env.txt" "$OUT/summary.md"
echo
echo "summary: $OUT/summary.md"
if [ "$FAILED" != 0 ]; then echo "FAILED: see the messages above" >&2; exit 1; fi
