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
# and is rebuilt only when tools/go.mod, go.sum, tools.go, this script or the
# Go toolchain changed (a stamp file beside it holds the hash of those).
#
# Environment:
#   SCOPEGATE_TOOLS_BIN       where to put promtool (default above)
#   SCOPEGATE_TOOLS_GO_P      go build -p value (default: number of cores)
#   SCOPEGATE_TOOLS_NICE      nice level for the build (default 10)
#   SCOPEGATE_TOOLS_FORCE=1   rebuild even if the stamp matches
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="${here}/tools"
bin="${SCOPEGATE_TOOLS_BIN:-${HOME}/.cache/scopegate-tools/bin}"
go_p="${SCOPEGATE_TOOLS_GO_P:-$(nproc 2>/dev/null || echo 2)}"
nice_level="${SCOPEGATE_TOOLS_NICE:-10}"

log() { printf '[monitoring] %s\n' "$*" >&2; }

command -v go >/dev/null 2>&1 || { log "go not found in PATH (Go >= 1.26 is needed)"; exit 1; }
command -v sha256sum >/dev/null 2>&1 || { log "sha256sum not found"; exit 1; }
command -v python3 >/dev/null 2>&1 || { log "python3 not found (it reads the dashboard JSON)"; exit 1; }

mkdir -p "${bin}"

# ---------------------------------------------------------------- promtool
build_promtool() {
  # Serialise concurrent runs (two CI jobs starting at once).
  if command -v flock >/dev/null 2>&1; then
    exec 8>"${bin}/.lock-promtool"
    flock 8
  fi
  local want stamp_file t
  want="$({
    cat "${tools}/go.mod" "${tools}/go.sum" "${tools}/tools.go" "${BASH_SOURCE[0]}"
    go version
    go env GOOS GOARCH
  } | sha256sum | cut -d' ' -f1)"
  stamp_file="${bin}/.stamp-promtool"
  if [[ "${SCOPEGATE_TOOLS_FORCE:-0}" != 1 && -x "${bin}/promtool" && -f "${stamp_file}" \
        && "$(cat "${stamp_file}")" == "${want}" ]]; then
    log "promtool in ${bin} is up to date (stamp ${want:0:12})"
    return
  fi
  rm -f "${stamp_file}"
  t=${SECONDS}
  log "building promtool (github.com/prometheus/prometheus/cmd/promtool) with -p ${go_p} ..."
  (
    cd "${tools}"
    # go.mod/go.sum exactly as committed; CGO off gives a static binary.
    export GOFLAGS="${GOFLAGS:-} -mod=readonly" CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
    go mod download github.com/prometheus/prometheus
    version="$(go list -m -f '{{.Version}}' github.com/prometheus/prometheus)"
    # promtool --version reports the module release (upstream stamps it the same way).
    ldflags="-s -w -X github.com/prometheus/common/version.Version=${version#v}"
    ldflags+=" -X github.com/prometheus/common/version.Branch=module"
    ldflags+=" -X github.com/prometheus/common/version.Revision=${version}"
    nice -n "${nice_level}" go build -p "${go_p}" -trimpath -ldflags="${ldflags}" \
      -o "${bin}/.promtool.tmp" github.com/prometheus/prometheus/cmd/promtool
  ) || { log "ERROR: could not build promtool; see the go output above"; exit 1; }
  mv -f "${bin}/.promtool.tmp" "${bin}/promtool"
  echo "${want}" >"${stamp_file}"
  log "built promtool in $((SECONDS - t))s"
}

t_all=${SECONDS}
build_promtool
promtool="${bin}/promtool"
"${promtool}" --version 2>&1 | head -1 >&2

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

log "all monitoring checks passed in $((SECONDS - t_all))s"
