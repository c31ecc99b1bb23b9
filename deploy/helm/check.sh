#!/usr/bin/env bash
# Checks the Helm chart deploy/helm/scopegate:
#
#   1. helm lint --strict, with the default values and with every value set of ci/
#   2. helm template for each value set (plus the defaults, the live RBAC source, and the
#      documented static-pod command with --show-only), then check-renders.py asserts
#      properties of the renders against the tested manifests in deploy/kubernetes and
#      deploy/static-pod (flags, probes, securityContext, Service clusterIP, PDB, sync
#      sidecar env and volumes, certificates)
#   3. value combinations that cannot work are refused (helm template fails with the reason)
#   4. files/aks-builtin-roles.json is policies/azure/aks-builtin-roles.json, byte for byte, and
#      the values table of the chart README is the one values-table.py makes from values.yaml
#
# helm is built from its Go module (helm.sh/helm/v3, the version tools/go.mod pins) through the
# Go module proxy into ${SCOPEGATE_TOOLS_BIN:-$HOME/.cache/scopegate-tools/bin}, and rebuilt only
# when tools/ or the Go toolchain changed (see tools/build-helm.sh for the environment knobs).
# Set HELM_RENDER_DIR=DIR to keep the renders there.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"
chart="${here}/scopegate"

log() { printf '[helm] %s\n' "$*" >&2; }

command -v go >/dev/null 2>&1 || { log "go not found in PATH (Go >= 1.26 is needed)"; exit 1; }
command -v python3 >/dev/null 2>&1 || { log "python3 not found (it checks the renders)"; exit 1; }
python3 -c 'import yaml' 2>/dev/null || { log "python3 has no yaml module (Debian: python3-yaml)"; exit 1; }

t_all=${SECONDS}
bin="$("${here}/tools/build-helm.sh")"
helm="${bin}/helm"
"${helm}" version --short >&2

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
out="${HELM_RENDER_DIR:-${work}/renders}"
mkdir -p "${out}"
# helm keeps its own caches and config; none of them is needed to lint and render a local chart.
export HELM_CACHE_HOME="${work}/cache" HELM_CONFIG_HOME="${work}/config" HELM_DATA_HOME="${work}/data"

log "files/aks-builtin-roles.json is policies/azure/aks-builtin-roles.json"
if ! cmp -s "${chart}/files/aks-builtin-roles.json" "${repo}/policies/azure/aks-builtin-roles.json"; then
  log "ERROR: copy policies/azure/aks-builtin-roles.json to deploy/helm/scopegate/files/"
  exit 1
fi

log "README.md's values table is values-table.py's (every value documented)"
python3 "${here}/values-table.py" "${chart}/values.yaml" >"${work}/values-table.md"
sed -n '/^<!-- values:begin -->$/,/^<!-- values:end -->$/p' "${chart}/README.md" | sed '1d;$d' >"${work}/readme-table.md"
if ! diff -u "${work}/readme-table.md" "${work}/values-table.md"; then
  log "ERROR: regenerate the table in deploy/helm/scopegate/README.md with deploy/helm/values-table.py"
  exit 1
fi

log "helm lint --strict (defaults and every ci/ value set)"
"${helm}" lint --strict "${chart}" -n kube-system >"${work}/lint.log" 2>&1 || { cat "${work}/lint.log" >&2; exit 1; }
for values in "${here}"/ci/*.yaml; do
  "${helm}" lint --strict "${chart}" -n kube-system -f "${values}" >"${work}/lint.log" 2>&1 ||
    { log "ERROR: helm lint with ${values#"${repo}/"}"; cat "${work}/lint.log" >&2; exit 1; }
done

log "helm template (renders in ${out})"
render() { # name helm-template-args...
  local name=$1
  shift
  "${helm}" template scopegate "${chart}" -n kube-system "$@" >"${out}/${name}.yaml" ||
    { log "ERROR: helm template for ${name} failed"; exit 1; }
}
render default
render default-live --set liveSource.enabled=true
for values in "${here}"/ci/*.yaml; do
  name="$(basename "${values}" .yaml)"
  render "${name}" -f "${values}"
done
# The command the chart README gives for the static Pod manifest.
render static-pod-show-only --set mode=staticPod --show-only templates/static-pod.yaml

log "render assertions (check-renders.py)"
python3 "${here}/check-renders.py" "${out}" "${repo}"

log "the rendered sync configs and sync containers' flags are read by scopegate itself (sync --check)"
scopegate="${SCOPEGATE_BIN:-${repo}/target/debug/scopegate}"
[ -x "${scopegate}" ] || (cd "${repo}" && cargo build --locked --bin scopegate >&2)
checked=0
for render in "${out}"/*.yaml; do
  # sync.yaml of the render, then one line per sync container: its flags, with the config
  # file's path made local and --once left out (--check stands for it).
  python3 - "${render}" "${work}/sync.yaml" "${work}/sync-args" <<'PY' || continue
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
config = [d["data"]["sync.yaml"] for d in docs
          if d.get("kind") == "ConfigMap" and "sync.yaml" in (d.get("data") or {})]
if not config:
    sys.exit(1)
open(sys.argv[2], "w").write(config[0])
lines = []
for d in docs:
    spec = ((d.get("spec") or {}).get("template") or {}).get("spec") or d.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        args = c.get("args") or []
        if args[:1] == ["sync"]:
            flags = [a for a in args[1:] if a != "--once" and not a.startswith("--config=")]
            lines.append(" ".join(flags))
open(sys.argv[3], "w").write("\n".join(lines) + ("\n" if lines else ""))
PY
  # The variables the workload identity webhook (or the chart, for a fallback secret) sets.
  export AZURE_TENANT_ID=72f988bf-86f1-41af-91ab-2d7cd011db47 AZURE_CLIENT_ID=9c1c1a6e-0b7e-4b8e-9f1e-5a0f0c1d2e3f \
    AZURE_FEDERATED_TOKEN_FILE=/var/run/secrets/azure/tokens/azure-identity-token
  flags_list=("")
  while IFS= read -r line; do flags_list+=("${line}"); done <"${work}/sync-args"
  for flags in "${flags_list[@]}"; do
    # shellcheck disable=SC2086 # one flag per word, as the container gets them
    if ! "${scopegate}" sync --check --config "${work}/sync.yaml" ${flags} >"${work}/sync-check.log" 2>&1; then
      log "ERROR: scopegate refuses the sync config or flags (${flags}) of $(basename "${render}"):"
      cat "${work}/sync-check.log" >&2
      exit 1
    fi
    checked=$((checked + 1))
  done
  unset AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_FEDERATED_TOKEN_FILE
done
((checked >= 4)) || { log "ERROR: only ${checked} sync configs and containers checked"; exit 1; }

log "value combinations that cannot work are refused"
refused=0
refuse() { # expected-message helm-template-args...
  local want=$1
  shift
  if "${helm}" template scopegate "${chart}" -n kube-system "$@" >"${work}/refused.yaml" 2>"${work}/refused.log"; then
    log "ERROR: helm template $* rendered; expected a refusal mentioning '${want}'"
    refused=1
  elif ! grep -qF -- "${want}" "${work}/refused.log"; then
    log "ERROR: helm template $* failed without '${want}':"
    cat "${work}/refused.log" >&2
    refused=1
  fi
}
refuse "workloadIdentity.clientId" --set sync.enabled=true --set 'sync.arm.scopes={/subscriptions/x}'
refuse "sync.arm.scopes" --set sync.enabled=true --set workloadIdentity.clientId=x
refuse "fallback credential" --set sync.enabled=true --set 'sync.arm.scopes={/subscriptions/x}' --set workloadIdentity.enabled=false
refuse "static pod" --set mode=staticPod --set sync.enabled=true --set 'sync.arm.scopes={/subscriptions/x}' --set workloadIdentity.clientId=x
refuse "/mode" --set mode=pod
refuse "/sync/mode" --set sync.mode=cron
refuse "clusterIP" --set service.clusterIP=
refuse "tls.existingSecret" --set tls.existingSecret=
refuse "policy.files or policy.existingConfigMap" --set policy.existingConfigMap=x --set policy.files.a\\.json='[]'
((refused == 0)) || exit 1

log "all chart checks passed in $((SECONDS - t_all))s"
