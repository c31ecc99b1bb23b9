#!/usr/bin/env bash
# Builds one Go command of a pinned module from the Go module proxy into a cache folder outside
# the source tree, and prints that folder on stdout (progress goes to stderr):
#
#   build-go-tool.sh TOOLS_DIR NAME MODULE PACKAGE [LDFLAGS]
#
# TOOLS_DIR holds the go.mod/go.sum (and tools.go) that pin MODULE; PACKAGE is the command to
# build, NAME the binary. In LDFLAGS `@VERSION@` stands for the module's version (`v1.2.3`),
# `@SEMVER@` for it without the `v`. Rebuilt only when TOOLS_DIR's go.mod, go.sum, tools.go, the
# arguments, this script or the Go toolchain changed (the stamp file .stamp-NAME in that folder
# holds their hash).
#
# Environment:
#   SCOPEGATE_TOOLS_BIN       where to put it (default $HOME/.cache/scopegate-tools/bin)
#   SCOPEGATE_TOOLS_GO_P      go build -p value (default: number of cores)
#   SCOPEGATE_TOOLS_NICE      nice level for the build (default 10)
#   SCOPEGATE_TOOLS_FORCE=1   rebuild even if the stamp matches
set -euo pipefail

tools="$(cd "$1" && pwd)"
name=$2
module=$3
package=$4
ldflags_template=${5:-}
bin="${SCOPEGATE_TOOLS_BIN:-${HOME}/.cache/scopegate-tools/bin}"
go_p="${SCOPEGATE_TOOLS_GO_P:-$(nproc 2>/dev/null || echo 2)}"
nice_level="${SCOPEGATE_TOOLS_NICE:-10}"

log() { printf '[build-%s] %s\n' "${name}" "$*" >&2; }

command -v go >/dev/null 2>&1 || { log "go not found in PATH (Go >= 1.26 is needed)"; exit 1; }
command -v sha256sum >/dev/null 2>&1 || { log "sha256sum not found"; exit 1; }
mkdir -p "${bin}"
# Serialise concurrent runs (check scripts and tests/e2e starting at once).
if command -v flock >/dev/null 2>&1; then
  exec 8>"${bin}/.lock-${name}"
  flock 8
fi

want="$({
  cat "${tools}/go.mod" "${tools}/go.sum" "${tools}/tools.go" "${BASH_SOURCE[0]}"
  printf '%s\n' "$@"
  go version
  go env GOOS GOARCH
} | sha256sum | cut -d' ' -f1)"
stamp_file="${bin}/.stamp-${name}"
if [[ "${SCOPEGATE_TOOLS_FORCE:-0}" != 1 && -x "${bin}/${name}" && -f "${stamp_file}" \
      && "$(cat "${stamp_file}")" == "${want}" ]]; then
  log "${name} in ${bin} is up to date (stamp ${want:0:12})"
  echo "${bin}"
  exit 0
fi
rm -f "${stamp_file}"
t=${SECONDS}
log "building ${name} (${package}) with -p ${go_p} ..."
(
  cd "${tools}"
  # go.mod/go.sum exactly as committed; CGO off gives a static binary.
  export GOFLAGS="${GOFLAGS:-} -mod=readonly" CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
  go mod download "${module}"
  version="$(go list -m -f '{{.Version}}' "${module}")"
  ldflags="${ldflags_template//@VERSION@/${version}}"
  ldflags="-s -w ${ldflags//@SEMVER@/${version#v}}"
  nice -n "${nice_level}" go build -p "${go_p}" -trimpath -ldflags="${ldflags}" \
    -o "${bin}/.${name}.tmp" "${package}"
) || { log "ERROR: could not build ${name}; see the go output above"; exit 1; }
mv -f "${bin}/.${name}.tmp" "${bin}/${name}"
echo "${want}" >"${stamp_file}"
log "built ${name} in $((SECONDS - t))s"
echo "${bin}"
