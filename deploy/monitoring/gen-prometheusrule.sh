#!/usr/bin/env bash
# Writes prometheus-rules.yaml, the PrometheusRule (Prometheus Operator) with
# the groups of rules.yml, the one source. check.sh fails if it is stale.
#   deploy/monitoring/gen-prometheusrule.sh            rewrite prometheus-rules.yaml
#   deploy/monitoring/gen-prometheusrule.sh --stdout   print it instead
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
render() {
  cat <<'HEAD'
# GENERATED from rules.yml by gen-prometheusrule.sh; edit rules.yml, then run
# deploy/monitoring/gen-prometheusrule.sh (check.sh fails when they differ).
# The `release` label is what a kube-prometheus-stack Prometheus selects by
# default; change it to your Prometheus's ruleSelector.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: scopegate
  namespace: kube-system
  labels:
    app.kubernetes.io/name: scopegate
    app.kubernetes.io/component: monitoring
    release: kube-prometheus-stack
spec:
HEAD
  # The groups, indented under spec: (comment lines of the header are left out).
  sed -n '/^groups:/,$p' "${here}/rules.yml" | sed 's/^\(.\)/  \1/'
}
if [[ "${1:-}" == --stdout ]]; then
  render
else
  render >"${here}/prometheus-rules.yaml"
fi
