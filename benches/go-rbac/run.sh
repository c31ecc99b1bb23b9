#!/usr/bin/env bash
# Baseline: ns/op of the in-tree Kubernetes RBAC authorizer (the one
# kube-apiserver runs for --authorization-mode=RBAC) on scopegate's synthetic RBAC shape
# (src/synthetic.rs rbac_bindings(): ClusterRole bench-reader, RoleBinding bench-user in
# ns-1, N more bindings, every 5th a ClusterRoleBinding) for N = 100, 10k, 100k; request
# `bench-user list pods in ns-1` (allowed), as `cargo bench -F bench-support --bench decide -- decide/rbac`.
#
#   benches/go-rbac/run.sh [BENCHTIME]     (default 2s per case; 12 cases)
#
# Two wirings of the same authorizer: `informer` = client-go listers over indexers, exactly
# as kube-apiserver builds it; `static` = upstream's BenchmarkAuthorize wiring
# (NewTestRuleResolver; its ListRoleBindings scans every RoleBinding).
set -euo pipefail
cd "$(dirname "$0")"
BENCHTIME=${1:-2s}
OUT=${TMPDIR:-/tmp}/go-rbac.bench.txt
nice -n 10 go test -run '^TestShape$' -v . | grep -E 'N=|^(ok|FAIL|---)'
nice -n 10 go test -run '^$' -bench . -benchtime="$BENCHTIME" -benchmem -count 1 -timeout 10m . | tee "$OUT"
echo
echo "| bindings | wiring | request | ns/op | µs/op | B/op | allocs/op |"
echo "|--:|---|---|--:|--:|--:|--:|"
awk '/^BenchmarkRBAC\// {
  split($1, p, "/"); sub("bindings=", "", p[2]); sub(/-[0-9]+$/, "", p[4]);
  printf "| %s | %s | %s | %s | %.2f | %s | %s |\n", p[2], p[3], p[4], $3, $3 / 1000, $5, $7
}' "$OUT"
