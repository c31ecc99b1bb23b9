#!/usr/bin/env bash
# Builds helm (helm.sh/helm/v3/cmd/helm, the release go.mod here pins) from the
# Go module proxy into a cache folder outside the source tree, and prints that
# folder on stdout (progress goes to stderr):
#
#   BIN=$(deploy/helm/tools/build-helm.sh)    # then $BIN/helm
#
# Rebuilt only when go.mod, go.sum, tools.go, this script or the Go toolchain
# changed (the stamp file .stamp-helm in that folder holds their hash).
#
# Environment:
#   SCOPEGATE_TOOLS_BIN       where to put helm (default $HOME/.cache/scopegate-tools/bin)
#   SCOPEGATE_TOOLS_GO_P      go build -p value (default: number of cores)
#   SCOPEGATE_TOOLS_NICE      nice level for the build (default 10)
#   SCOPEGATE_TOOLS_FORCE=1   rebuild even if the stamp matches
set -euo pipefail

tools="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${SCOPEGATE_TOOLS_BIN:-${HOME}/.cache/scopegate-tools/bin}"
go_p="${SCOPEGATE_TOOLS_GO_P:-$(nproc 2>/dev/null || echo 2)}"
nice_level="${SCOPEGATE_TOOLS_NICE:-10}"

log() { printf '[build-helm] %s\n' "$*" >&2; }

command -v go >/dev/null 2>&1 || { log "go not found in PATH (Go >= 1.26 is needed)"; exit 1; }
command -v sha256sum >/dev/null 2>&1 || { log "sha256sum not found"; exit 1; }
mkdir -p "${bin}"
# Serialise concurrent runs (check.sh and tests/e2e starting at once).
if command -v flock >/dev/null 2>&1; then
  exec 8>"${bin}/.lock-helm"
  flock 8
fi

want="$({
  cat "${tools}/go.mod" "${tools}/go.sum" "${tools}/tools.go" "${BASH_SOURCE[0]}"
  go version
  go env GOOS GOARCH
} | sha256sum | cut -d' ' -f1)"
stamp_file="${bin}/.stamp-helm"
if [[ "${SCOPEGATE_TOOLS_FORCE:-0}" != 1 && -x "${bin}/helm" && -f "${stamp_file}" \
      && "$(cat "${stamp_file}")" == "${want}" ]]; then
  log "helm in ${bin} is up to date (stamp ${want:0:12})"
  echo "${bin}"
  exit 0
fi
rm -f "${stamp_file}"
t=${SECONDS}
log "building helm (helm.sh/helm/v3/cmd/helm) with -p ${go_p} ..."
(
  cd "${tools}"
  # go.mod/go.sum exactly as committed; CGO off gives a static binary.
  export GOFLAGS="${GOFLAGS:-} -mod=readonly" CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
  go mod download helm.sh/helm/v3
  version="$(go list -m -f '{{.Version}}' helm.sh/helm/v3)"
  # `helm version` reports the module release (upstream's Makefile stamps it the same way).
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${version}"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  nice -n "${nice_level}" go build -p "${go_p}" -trimpath -ldflags="${ldflags}" \
    -o "${bin}/.helm.tmp" helm.sh/helm/v3/cmd/helm
) || { log "ERROR: could not build helm; see the go output above"; exit 1; }
mv -f "${bin}/.helm.tmp" "${bin}/helm"
echo "${want}" >"${stamp_file}"
log "built helm in $((SECONDS - t))s"
echo "${bin}"
