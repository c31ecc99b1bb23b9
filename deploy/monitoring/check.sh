#!/usr/bin/env bash
# Checks scopegate's alerting rules and Grafana dashboard with promtool:
#
#   1. promtool check rules rules.yml        (syntax, PromQL, templates)
#   2. promtool test rules rules_test.yml    (each alert fires, and does not, as expected)
#   3. every `expr` of grafana-dashboard.json, made a recording rule, through
#      promtool check rules                  (a typo in a panel query fails here)
#   4. prometheus-rules.yaml (the PrometheusRule) is rules.yml wrapped by
#      gen-prometheusrule.sh, byte for byte  (rules.yml is the one source)
#
# promtool is built from its Go module (github.com/prometheus/prometheus, the
# version tools/go.mod pins) through the Go module proxy, so it works on a
# fresh machine with Go >= 1.26. It goes to a cache folder outside the tree:
#
#   ${SCOPEGATE_TOOLS_BIN:-$HOME/.cache/scopegate-tools/bin}
#
# and is rebuilt only when tools/go.mod, go.sum, tools.go, deploy/tools/build-go-tool.sh
# or the Go toolchain changed (a stamp file beside it holds the hash of those).
#
# Environment:
#   SCOPEGATE_TOOLS_BIN       where to put promtool (default above)
#   SCOPEGATE_TOOLS_GO_P      go build -p value (default: number of cores)
#   SCOPEGATE_TOOLS_NICE      nice level for the build (default 10)
#   SCOPEGATE_TOOLS_FORCE=1   rebuild even if the stamp matches
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="${here}/tools"

log() { printf '[monitoring] %s\n' "$*" >&2; }

command -v go >/dev/null 2>&1 || { log "go not found in PATH (Go >= 1.26 is needed)"; exit 1; }
command -v python3 >/dev/null 2>&1 || { log "python3 not found (it reads the dashboard JSON)"; exit 1; }

t_all=${SECONDS}
bin="$("${tools}/build-promtool.sh")"
promtool="${bin}/promtool"
"${promtool}" --version 2>&1 | sed -n 1p >&2 # sed reads it all: no SIGPIPE under pipefail

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
cd "${here}"

log "promtool check rules rules.yml"
"${promtool}" check rules rules.yml

log "promtool test rules rules_test.yml"
"${promtool}" test rules rules_test.yml

log "dashboard queries (every expr of grafana-dashboard.json as a recording rule)"
python3 "${here}/dashboard-exprs.py" grafana-dashboard.json >"${work}/dashboard-rules.yml"
"${promtool}" check rules "${work}/dashboard-rules.yml"

log "prometheus-rules.yaml is rules.yml wrapped (regenerate with gen-prometheusrule.sh)"
"${here}/gen-prometheusrule.sh" --stdout >"${work}/prometheus-rules.yaml"
if ! diff -u prometheus-rules.yaml "${work}/prometheus-rules.yaml"; then
  log "ERROR: prometheus-rules.yaml differs from rules.yml; run deploy/monitoring/gen-prometheusrule.sh"
  exit 1
fi

# And the groups it embeds, taken back out of spec:, are a valid rule file.
sed -e '1,/^spec:/d' -e 's/^  //' prometheus-rules.yaml >"${work}/prometheusrule-spec.yml"
"${promtool}" check rules "${work}/prometheusrule-spec.yml"

log "all monitoring checks passed in $((SECONDS - t_all))s"
