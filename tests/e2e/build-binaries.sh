#!/usr/bin/env bash
# Builds the real upstream binaries the scopegate end-to-end tests run against:
#
#   kube-apiserver  k8s.io/kubernetes/cmd/kube-apiserver   (k8s.io/kubernetes, see tools/go.mod)
#   kubectl         k8s.io/kubernetes/cmd/kubectl
#   etcd            go.etcd.io/etcd/server/v3              (the etcd release k8s.io/kubernetes pins)
#   oidc-issuer     ./cmd/oidc-issuer                      (test OpenID Connect issuer, tools/cmd/oidc-issuer)
#
# Everything comes from the Go module proxy through tests/e2e/tools/go.mod and
# go.sum, so it works on a fresh machine with Go >= 1.26 and an empty module
# cache. The binaries go to a cache folder outside the source tree:
#
#   ${SCOPEGATE_E2E_BIN:-$HOME/.cache/scopegate-e2e/bin}
#
# and are rebuilt only when go.mod, go.sum, tools.go, this script or the Go
# toolchain changed (a stamp file in that folder holds the hash of those);
# oidc-issuer has its own stamp that also covers its source, so editing it
# does not rebuild the upstream binaries.
#
# Progress goes to stderr; the only thing printed on stdout is the bin folder,
# so a harness can do:  BIN=$(tests/e2e/build-binaries.sh)
#
# Environment:
#   SCOPEGATE_E2E_BIN        where to put the binaries (default above)
#   SCOPEGATE_E2E_GO_P       go build -p value (default: number of cores)
#   SCOPEGATE_E2E_NICE       nice level for the builds (default 10)
#   SCOPEGATE_E2E_FORCE=1    rebuild even if the stamp matches
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="${here}/tools"
bin="${SCOPEGATE_E2E_BIN:-${HOME}/.cache/scopegate-e2e/bin}"
go_p="${SCOPEGATE_E2E_GO_P:-$(nproc 2>/dev/null || echo 2)}"
nice_level="${SCOPEGATE_E2E_NICE:-10}"
binaries=(kube-apiserver kubectl etcd) # plus oidc-issuer, stamped separately

log() { printf '[build-binaries] %s\n' "$*" >&2; }

command -v go >/dev/null 2>&1 || { log "go not found in PATH (Go >= 1.26 is needed)"; exit 1; }
command -v sha256sum >/dev/null 2>&1 || { log "sha256sum not found"; exit 1; }

mkdir -p "${bin}"

# Serialise concurrent runs (two test jobs starting at once).
if command -v flock >/dev/null 2>&1; then
  exec 9>"${bin}/.lock"
  flock 9
fi

# Everything that determines the output binaries.
stamp_input() {
  cat "${tools}/go.mod" "${tools}/go.sum" "${tools}/tools.go" "${BASH_SOURCE[0]}"
  go version
  go env GOOS GOARCH
}
issuer_stamp_input() {
  cat "${tools}/go.mod" "${tools}/go.sum" "${BASH_SOURCE[0]}" "${tools}"/cmd/oidc-issuer/*.go
  go version
  go env GOOS GOARCH
}
want_stamp="$(stamp_input | sha256sum | cut -d' ' -f1)"
stamp_file="${bin}/.stamp"
want_issuer_stamp="$(issuer_stamp_input | sha256sum | cut -d' ' -f1)"
issuer_stamp_file="${bin}/.stamp-oidc-issuer"

up_to_date=1
[[ "${SCOPEGATE_E2E_FORCE:-0}" == 1 ]] && up_to_date=0
for b in "${binaries[@]}"; do
  [[ -x "${bin}/${b}" ]] || up_to_date=0
done
if [[ ! -f "${stamp_file}" || "$(cat "${stamp_file}")" != "${want_stamp}" ]]; then
  up_to_date=0
fi
issuer_up_to_date=1
[[ "${SCOPEGATE_E2E_FORCE:-0}" == 1 ]] && issuer_up_to_date=0
[[ -x "${bin}/oidc-issuer" ]] || issuer_up_to_date=0
if [[ ! -f "${issuer_stamp_file}" || "$(cat "${issuer_stamp_file}")" != "${want_issuer_stamp}" ]]; then
  issuer_up_to_date=0
fi
if [[ ${up_to_date} == 1 && ${issuer_up_to_date} == 1 ]]; then
  log "binaries in ${bin} are up to date (stamps ${want_stamp:0:12} ${want_issuer_stamp:0:12})"
  echo "${bin}"
  exit 0
fi

cd "${tools}"
# Use the module's go.mod/go.sum exactly as committed; CGO off gives static
# binaries (as upstream builds them) and needs no C compiler.
export GOFLAGS="${GOFLAGS:-} -mod=readonly"
export CGO_ENABLED=0
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"

build() { # name package ldflags
  local name=$1 pkg=$2 ldflags=$3 t=${SECONDS}
  log "building ${name} (${pkg}) with -p ${go_p} ..."
  if ! nice -n "${nice_level}" go build -p "${go_p}" -trimpath -ldflags="${ldflags}" \
    -o "${bin}/.${name}.tmp" "${pkg}"; then
    log "ERROR: could not build ${name} (${pkg}); see the go output above"
    exit 1
  fi
  mv -f "${bin}/.${name}.tmp" "${bin}/${name}"
  log "built ${name} in $((SECONDS - t))s"
}

t_all=${SECONDS}
if [[ ${up_to_date} == 1 ]]; then
  log "kube-apiserver, kubectl, etcd in ${bin} are up to date (stamp ${want_stamp:0:12})"
else
  rm -f "${stamp_file}"

  log "downloading modules (Go module proxy) ..."
  t=${SECONDS}
  go mod download || { log "ERROR: go mod download failed (is the Go module proxy reachable?)"; exit 1; }
  log "modules ready in $((SECONDS - t))s"

  k8s_version="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"        # e.g. v1.36.5
  k8s_date="$(go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
  etcd_version="$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)" # e.g. v3.6.8
  major="${k8s_version#v}"; major="${major%%.*}"
  minor="${k8s_version#v*.}"; minor="${minor%%.*}"

  # Same version stamping as upstream's hack/lib/version.sh, so that
  # `kube-apiserver --version` and `kubectl version` report the real release.
  k8s_ldflags="-s -w"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    k8s_ldflags+=" -X ${pkg}.gitVersion=${k8s_version}"
    k8s_ldflags+=" -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor}"
    k8s_ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${k8s_date}"
  done
  etcd_ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-${etcd_version}"

  build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "${k8s_ldflags}"
  build kubectl k8s.io/kubernetes/cmd/kubectl "${k8s_ldflags}"
  build etcd go.etcd.io/etcd/server/v3 "${etcd_ldflags}"

  echo "${want_stamp}" >"${stamp_file}"
  "${bin}/kube-apiserver" --version >&2
  "${bin}/kubectl" version --client >&2
  "${bin}/etcd" --version >&2
fi

if [[ ${issuer_up_to_date} == 0 ]]; then
  rm -f "${issuer_stamp_file}"
  build oidc-issuer ./cmd/oidc-issuer "-s -w"
  echo "${want_issuer_stamp}" >"${issuer_stamp_file}"
fi
log "binaries ready in $((SECONDS - t_all))s"
echo "${bin}"
