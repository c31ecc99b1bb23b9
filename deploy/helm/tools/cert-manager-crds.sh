#!/usr/bin/env bash
# Prints the folder holding cert-manager's CustomResourceDefinitions (deploy/crds/*.yaml of the Go
# module github.com/cert-manager/cert-manager at the version below), downloaded through the Go
# module proxy into the module cache and checked against the pinned hash (and the checksum
# database). tests/e2e applies the Issuer and Certificate CRDs before it dry-runs the chart's
# cert-manager objects against kube-apiserver.
#
#   CRDS=$(deploy/helm/tools/cert-manager-crds.sh)   # then $CRDS/cert-manager.io_issuers.yaml
set -euo pipefail

module=github.com/cert-manager/cert-manager
version=v1.21.2
sum="h1:UWgoYM+KLNtRlqmoWOKjKBOBUPVHeepQ6/ac3ERJW68="

log() { printf '[cert-manager-crds] %s\n' "$*" >&2; }
command -v go >/dev/null 2>&1 || { log "go not found in PATH"; exit 1; }
command -v python3 >/dev/null 2>&1 || { log "python3 not found"; exit 1; }

# Outside any module: only this module is downloaded, nothing is added to a go.mod.
json="$(cd / && GOFLAGS=-mod=mod go mod download -json "${module}@${version}")" ||
  { log "ERROR: go mod download ${module}@${version} failed"; exit 1; }
read -r got_sum dir < <(python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Sum", ""), d.get("Dir", ""))' <<<"${json}")
if [[ "${got_sum}" != "${sum}" ]]; then
  log "ERROR: ${module}@${version} has hash ${got_sum}, expected ${sum}"
  exit 1
fi
[[ -f "${dir}/deploy/crds/cert-manager.io_certificates.yaml" ]] ||
  { log "ERROR: no deploy/crds/ in ${dir}"; exit 1; }
echo "${dir}/deploy/crds"
