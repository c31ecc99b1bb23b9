#!/usr/bin/env bash
# scopegate end-to-end suite: a real etcd + kube-apiserver (v1.36.5) calls scopegate as its
# authorization webhook (the shipped deploy/apiserver/ manifests, mutual TLS), and real kubectl,
# authenticated as different users, drives the scenarios described in tests/e2e/README.md.
#
#   tests/e2e/run.sh                 # everything: builds, starts, tests, stops, cleans up
#   KEEP=1 tests/e2e/run.sh          # keep the temp dir (logs, configs, tokens) afterwards
#   SCOPEGATE_E2E_SCOPEGATE=/path/to/scopegate tests/e2e/run.sh   # test that binary, skip cargo build
#
# Prints one line per check and, last, `N passed, M failed`. Exits 0 only if every check passed.
# Everything listens on 127.0.0.1 (free ports); all processes are stopped on exit, also on
# failure, Ctrl-C or SIGTERM (scopegate, kube-apiserver, issuer, then etcd: see NOTES.md).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"
t_start=${SECONDS}

# fd 3 = the original stderr: a signal trap can run while a `{ ...; } >file` block has stderr
# redirected, and the cleanup messages must still reach the terminal.
exec 3>&2
log() { printf '[e2e] %s\n' "$*" >&3; }
die() { log "ERROR: $*"; exit 1; }

for tool in curl openssl python3 sed diff $([[ -n "${SCOPEGATE_E2E_SCOPEGATE:-}" ]] || echo cargo); do
  command -v "${tool}" >/dev/null 2>&1 || die "${tool} not found in PATH"
done

# --- process management and cleanup ----------------------------------------------------------
work=""
etcd_pid="" apiserver_pid="" issuer_pid="" scopegate_pid=""
passed=0 failed=0

stop() { # pid name grace-seconds: SIGTERM, SIGKILL after the grace period
  local pid=$1 name=$2 grace=$3 start=${SECONDS}
  [[ -n "${pid}" ]] || return 0
  kill "${pid}" 2>/dev/null || { wait "${pid}" 2>/dev/null; return 0; }
  while kill -0 "${pid}" 2>/dev/null; do
    if ((SECONDS - start >= grace)); then
      log "${name} still running after ${grace}s, sending SIGKILL"
      kill -9 "${pid}" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  wait "${pid}" 2>/dev/null || true
  log "stopped ${name} (${pid}) in $((SECONDS - start))s"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # scopegate first: its open watches (live RBAC source) would hold kube-apiserver's graceful
  # shutdown open. kube-apiserver strictly before etcd: with etcd gone it retries forever.
  stop "${scopegate_pid}" scopegate 10
  stop "${apiserver_pid}" kube-apiserver 15
  stop "${issuer_pid}" oidc-issuer 5
  stop "${etcd_pid}" etcd 10
  if ((rc != 0)) && [[ -n "${work}" && -d "${work}" ]]; then
    for f in scopegate.log apiserver.log oidc-issuer.log etcd.log; do
      [[ -s "${work}/${f}" ]] || continue
      log "last lines of ${f}:"
      tail -n 15 "${work}/${f}" | cut -c1-600 >&3
    done
  fi
  if [[ -n "${work}" ]]; then
    if [[ "${KEEP:-0}" == 1 ]]; then log "kept ${work}"; else rm -rf "${work}"; fi
  fi
  log "total $((SECONDS - t_start))s (builds $((${t_built:-${SECONDS}} - t_start))s)"
  exit "${rc}"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# --- 1. binaries -----------------------------------------------------------------------------
log "building/checking kube-apiserver, kubectl, etcd, oidc-issuer (tests/e2e/build-binaries.sh) ..."
bin="$("${here}/build-binaries.sh")" || die "tests/e2e/build-binaries.sh failed: the upstream binaries or the OIDC issuer could not be built (output above)"
bin="$(cd "${bin}" && pwd)" # absolute: the run later works inside its temp dir
for b in kube-apiserver kubectl etcd oidc-issuer; do
  [[ -x "${bin}/${b}" ]] || die "${bin}/${b} is missing after build-binaries.sh"
done
kubectl_bin="${bin}/kubectl"

if [[ -n "${SCOPEGATE_E2E_SCOPEGATE:-}" ]]; then
  scopegate="$(realpath "${SCOPEGATE_E2E_SCOPEGATE}")" || die "SCOPEGATE_E2E_SCOPEGATE=${SCOPEGATE_E2E_SCOPEGATE}: no such file"
  log "using the scopegate binary ${scopegate} (SCOPEGATE_E2E_SCOPEGATE; no cargo build)"
else
  log "building scopegate (cargo build --bin scopegate) ..."
  (cd "${repo}" && cargo build --bin scopegate) || die "cargo build --bin scopegate failed (output above)"
  # cargo's own answer: a target dir set by CARGO_TARGET_DIR, .cargo/config.toml or a wrapper
  target_dir="$(cd "${repo}" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')" ||
    die "cargo metadata failed: cannot tell where cargo put the scopegate binary"
  scopegate="${target_dir}/debug/scopegate"
fi
[[ -x "${scopegate}" ]] || die "scopegate binary ${scopegate} not found"
t_built=${SECONDS}
work="$(mktemp -d -t scopegate-e2e.XXXXXX)"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for() { # description timeout-seconds command...
  local what=$1 timeout=$2 start=${SECONDS}
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS - start >= timeout)) && die "timed out after ${timeout}s waiting for ${what}"
    sleep 0.2
  done
}

# --- checks ----------------------------------------------------------------------------------
pass() { passed=$((passed + 1)); printf 'PASS  %s\n' "$1"; }
fail() {
  failed=$((failed + 1))
  printf 'FAIL  %s\n' "$1"
  [[ -n "${2:-}" ]] && printf '%s\n' "$2" | cut -c1-800 | sed 's/^/        /'
  return 0
}

# kc USER ARGS...: kubectl as USER (kubeconfig with that user's bearer token); sets OUT and RC.
OUT="" RC=0
kc() {
  local user=$1; shift
  OUT="$("${kubectl_bin}" --kubeconfig "${work}/kubeconfigs/${user}" --request-timeout=20s "$@" 2>&1)"
  RC=$?
  printf '$ kubectl [%s] %s\n-> rc=%s\n%s\n\n' "${user}" "$*" "${RC}" "${OUT}" >>"${work}/kubectl.log"
}
last() { printf 'kubectl %s (as %s) -> rc=%s: %s' "${LAST_CMD}" "${LAST_USER}" "${RC}" "${OUT}"; }
LAST_CMD="" LAST_USER=""
run() { LAST_USER=$1; LAST_CMD="${*:2}"; kc "$@"; }

# expect ok|forbidden|notforbidden|yes|no DESCRIPTION USER KUBECTL-ARGS...
#   ok           kubectl exit 0
#   forbidden    kubectl failed with an HTTP 403 ("(Forbidden)", or "... is forbidden: ..." from
#                kubectl create, which rewords the error)
#   notforbidden not a 403 (authorized; may fail later, e.g. NotFound or no node for exec)
#   yes|no       `kubectl auth can-i` answer
expect() {
  local kind=$1 desc=$2
  shift 2
  run "$@"
  local ok=1
  case ${kind} in
    ok) ((RC == 0)) || ok=0 ;;
    forbidden) ((RC != 0)) && [[ ${OUT} == *"(Forbidden)"* || ${OUT} == *" is forbidden: "* ]] || ok=0 ;;
    notforbidden) [[ ${OUT} != *"(Forbidden)"* && ${OUT} != *" is forbidden: "* && ${OUT} != *"(InternalError)"* ]] || ok=0 ;;
    yes) ((RC == 0)) && [[ ${OUT##*$'\n'} == yes* ]] || ok=0 ;; # last line: after any warnings
    no) ((RC == 1)) && [[ ${OUT##*$'\n'} == no* ]] || ok=0 ;;
    *) die "expect: unknown kind ${kind}" ;;
  esac
  if ((ok)); then pass "${desc}"; else fail "${desc}" "$(last)"; fi
}
# expect_match DESCRIPTION REGEX: the last command's whole output (newlines included, so
# [[:space:]] spans lines) matches the extended REGEX
expect_match() {
  if printf '%s' "${OUT}" | grep -Ezq -- "$2"; then pass "$1"; else fail "$1" "expected /$2/ in: $(last)"; fi
}

# --- 3. PKI, users, policies, configs --------------------------------------------------------
cd "${work}"
mkdir -p pki scopegate policies/azure kubeconfigs tokens
etcd_client_port="$(free_port)"
etcd_peer_port="$(free_port)"
api_port="$(free_port)"
issuer_port="$(free_port)"
sg_port="$(free_port)"
sg_admin_port="$(free_port)"

# Throwaway CA for kube-apiserver's and the OIDC issuer's serving certificates.
{
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=scopegate-e2e-ca \
    -keyout pki/ca.key -out pki/ca.crt &&
    for name in apiserver issuer; do
      openssl req -newkey rsa:2048 -nodes -subj "/CN=e2e-${name}" \
        -keyout "pki/${name}.key" -out "pki/${name}.csr" &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"pki/${name}.ext" &&
        openssl x509 -req -in "pki/${name}.csr" -CA pki/ca.crt -CAkey pki/ca.key -CAcreateserial \
          -days 1 -extfile "pki/${name}.ext" -out "pki/${name}.crt" || exit 1
    done &&
    openssl genrsa -out pki/sa.key 2048 &&
    openssl rsa -in pki/sa.key -pubout -out pki/sa.pub
} >pki/openssl.log 2>&1 || die "openssl failed: $(cat pki/openssl.log)"

# scopegate's own CA, serving and client (CN kube-apiserver) certificates.
"${scopegate}" certs --out-dir "${work}/scopegate" --host 127.0.0.1 >scopegate/certs.log 2>&1 ||
  die "scopegate certs failed: $(cat scopegate/certs.log)"
for f in ca.crt server.crt server.key client.crt client.key; do
  [[ -s "scopegate/${f}" ]] || die "scopegate certs did not write ${f}"
done

# Identities. Entra-like object ids (GUIDs) for users and groups.
sub_id=5e2e0000-0000-4000-8000-00000000e2e0
cluster_id="/subscriptions/${sub_id}/resourceGroups/rg-e2e/providers/Microsoft.ContainerService/managedClusters/aks-e2e"
grp_finance_dev=6f0b7e4a-1c2d-4e5f-8a9b-00000000e2d1 # Writer in namespace finance-app
grp_platform=9c8d7e6f-5a4b-4c3d-8e2f-00000000e2a1    # Cluster Admin, excluded from the deny assignment
grp_late=4d3c2b1a-0f9e-4d8c-8b7a-00000000e2c1        # granted while running (scenario 6)
oid_dev=11111111-1111-4111-8111-00000000de01
oid_reader=22222222-2222-4222-8222-00000000ea01 # Reader at cluster scope, as a User principal
oid_platform=33333333-3333-4333-8333-0000000a1a01
oid_late=44444444-4444-4444-8444-00000000a7e1
oid_rbac=55555555-5555-4555-8555-00000000bac1 # no Azure assignment: only Kubernetes RBAC
dev=dev@contoso.com reader=reader@contoso.com platform=platform@contoso.com
late=late@contoso.com rbacuser=rbac-user@contoso.com

admin_token="$(openssl rand -hex 20)"
legacy_token="$(openssl rand -hex 20)"
# token,user,uid,"groups"; the admin is the break-glass identity (system:masters never reaches
# any authorizer); legacy-user is a non-Entra user (no oid extra).
cat >tokens.csv <<EOF
${admin_token},e2e-admin,e2e-admin-uid,"system:masters"
${legacy_token},legacy-user,legacy-user-uid,"legacy-team"
EOF

# Scenario 10: Entra access tokens that scopegate validates itself (TokenReview webhook), signed
# with a key only scopegate knows (offline JWKS); the apiserver's JWT authenticator does not
# accept their issuer, so they reach the token webhook. A directory export beside the policy.
tenant=7e2e0000-0000-4000-8000-00000000e2e7
entra_issuer="https://sts.windows.net/${tenant}/"
aks_audience=6dae42f8-4368-4678-94ff-3960e28e3630 # AKS's server application
grp_wh=8a8a8a8a-0000-4000-8000-00000000e2b1      # Reader in namespace wh-app
grp_wh_team=8b8b8b8b-0000-4000-8000-00000000e2b2 # member of grp_wh (nested)
oid_wh_dev=66666666-6666-4666-8666-00000000b0d1
oid_wh_overage=77777777-7777-4777-8777-00000000b0e1
oid_wh_disabled=88888888-8888-4888-8888-00000000b0f1
oid_wh_pim=99999999-9999-4999-8999-00000000b0a1
mkdir -p entra
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out pki/entra-signing.key >>pki/openssl.log 2>&1 ||
  die "openssl genpkey failed: $(tail -n 5 pki/openssl.log)"
python3 "${here}/mint-entra-tokens.py" pki/entra-signing.key entra "${entra_issuer}" "${aks_audience}" "${tenant}" \
  "wh-dev|${oid_wh_dev}|wh-dev@contoso.com|${grp_wh_team}" \
  "wh-overage|${oid_wh_overage}|wh-overage@contoso.com|overage" \
  "wh-disabled|${oid_wh_disabled}|wh-disabled@contoso.com|${grp_wh}" \
  "wh-pim|${oid_wh_pim}|wh-pim@contoso.com|" >entra/mint.log 2>&1 ||
  die "tests/e2e/mint-entra-tokens.py failed: $(cat entra/mint.log)"
member() { printf '{"@odata.type":"#microsoft.graph.user","id":"%s"}' "$1"; }
write_directory() { # members of the team group: a JSON array
  cat >policies/azure/.entra-groups.json.tmp <<EOF
[
  {"id": "${grp_wh}", "displayName": "wh-readers",
   "members": [{"@odata.type": "#microsoft.graph.group", "id": "${grp_wh_team}"}]},
  {"id": "${grp_wh_team}", "displayName": "wh-team", "members": $1}
]
EOF
  mv -f policies/azure/.entra-groups.json.tmp policies/azure/entra-groups.json
}
write_directory "[$(member "${oid_wh_dev}"), $(member "${oid_wh_overage}")]"
cat >policies/azure/entra-users.json <<EOF
{"@odata.context": "https://graph.microsoft.com/v1.0/\$metadata#users(id,userPrincipalName,accountEnabled)",
 "value": [
  {"id": "${oid_wh_dev}", "userPrincipalName": "wh-dev@contoso.com", "accountEnabled": true},
  {"id": "${oid_wh_overage}", "userPrincipalName": "wh-overage@contoso.com", "accountEnabled": true},
  {"id": "${oid_wh_disabled}", "userPrincipalName": "wh-disabled@contoso.com", "accountEnabled": false},
  {"id": "${oid_wh_pim}", "userPrincipalName": "wh-pim@contoso.com", "accountEnabled": true}
 ]}
EOF

# Azure policy: the AKS built-in roles, role assignments, a deny assignment.
cp "${repo}/policies/azure/aks-builtin-roles.json" policies/azure/
role_def() { echo "/subscriptions/${sub_id}/providers/Microsoft.Authorization/roleDefinitions/$1"; }
assignment() { # name principal-id principal-type role-guid role-name scope
  cat <<EOF
  {
    "condition": null,
    "conditionVersion": null,
    "id": "$6/providers/Microsoft.Authorization/roleAssignments/$1",
    "name": "$1",
    "principalId": "$2",
    "principalType": "$3",
    "roleDefinitionId": "$(role_def "$4")",
    "roleDefinitionName": "$5",
    "scope": "$6",
    "type": "Microsoft.Authorization/roleAssignments"
  }
EOF
}
writer=a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb reader_role=7f6c6a51-bcf8-42ba-9220-52d62157d7db
cluster_admin=b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b
write_assignments() { # [extra assignment JSON]
  {
    echo "["
    assignment 0e2e0001-0000-4000-8000-000000000001 "${grp_finance_dev}" Group "${writer}" \
      "Azure Kubernetes Service RBAC Writer" "${cluster_id}/namespaces/finance-app"
    echo ","
    assignment 0e2e0002-0000-4000-8000-000000000002 "${oid_reader}" User "${reader_role}" \
      "Azure Kubernetes Service RBAC Reader" "${cluster_id}"
    echo ","
    assignment 0e2e0003-0000-4000-8000-000000000003 "${grp_platform}" Group "${cluster_admin}" \
      "Azure Kubernetes Service RBAC Cluster Admin" "${cluster_id}"
    echo ","
    assignment 0e2e0004-0000-4000-8000-000000000004 "${grp_wh}" Group "${reader_role}" \
      "Azure Kubernetes Service RBAC Reader" "${cluster_id}/namespaces/wh-app"
    [[ -n "${1:-}" ]] && { echo ","; echo "$1"; }
    echo "]"
  } >policies/azure/.role-assignments.json.tmp
  # atomic replace; names starting with "." are ignored by scopegate's loader
  mv -f policies/azure/.role-assignments.json.tmp policies/azure/role-assignments.json
}
write_assignments
deny_name=e2e-no-secrets-outside-platform
cat >policies/azure/deny-assignments.json <<EOF
[
  {
    "id": "${cluster_id}/providers/Microsoft.Authorization/denyAssignments/0e2ede01-0000-4000-8000-000000000001",
    "name": "0e2ede01-0000-4000-8000-000000000001",
    "type": "Microsoft.Authorization/denyAssignments",
    "properties": {
      "denyAssignmentName": "${deny_name}",
      "description": "only the platform group reads or changes secrets",
      "permissions": [
        { "actions": [], "notActions": [],
          "dataActions": ["Microsoft.ContainerService/managedClusters/secrets/*"], "notDataActions": [] }
      ],
      "scope": "${cluster_id}",
      "doNotApplyToChildScopes": false,
      "principals": [{ "id": "00000000-0000-0000-0000-000000000000", "type": "SystemDefined" }],
      "excludePrincipals": [{ "id": "${grp_platform}", "type": "Group" }],
      "isSystemProtected": false
    }
  }
]
EOF
# Scenario 11: workload identity. A user-assigned managed identity whose federated credential
# trusts service account payments/api of this cluster's issuer (the apiserver's
# --service-account-issuer), with Key Vault Secrets User at a vault; a second identity without
# credentials. The service account itself only ever exists in the cluster (live source).
sa_issuer=https://kubernetes.default.svc.cluster.local
wi_rg_id="/subscriptions/${sub_id}/resourcegroups/rg-e2e"
wi_identity="${wi_rg_id}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-payments-api"
wi_client_id=c11e0000-0000-4000-8000-0000000e2e11
wi_principal_id=a11e0000-0000-4000-8000-0000000e2e11
kv_id="/subscriptions/${sub_id}/resourceGroups/rg-e2e/providers/Microsoft.KeyVault/vaults/kv-e2e-payments"
kv_secrets_user=4633458b-17de-408a-b874-0445c86b69e6
cat >policies/azure/managed-identities.json <<EOF
[
  {"clientId": "${wi_client_id}", "principalId": "${wi_principal_id}", "tenantId": "${tenant}",
   "id": "${wi_identity}", "location": "westeurope", "name": "id-payments-api", "resourceGroup": "rg-e2e",
   "tags": {}, "type": "Microsoft.ManagedIdentity/userAssignedIdentities"},
  {"clientId": "c11e0000-0000-4000-8000-0000000e2e12", "principalId": "a11e0000-0000-4000-8000-0000000e2e12",
   "tenantId": "${tenant}", "id": "${wi_rg_id}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-batch",
   "location": "westeurope", "name": "id-batch", "resourceGroup": "rg-e2e", "tags": {},
   "type": "Microsoft.ManagedIdentity/userAssignedIdentities"}
]
EOF
cat >policies/azure/federated-credentials.json <<EOF
[
  {"id": "${wi_identity}/federatedIdentityCredentials/aks-e2e-payments-api", "name": "aks-e2e-payments-api",
   "issuer": "${sa_issuer}", "subject": "system:serviceaccount:payments:api",
   "audiences": ["api://AzureADTokenExchange"], "resourceGroup": "rg-e2e",
   "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"}
]
EOF
cat >policies/azure/key-vault-roles.json <<EOF
[
  {"assignableScopes": ["/"], "description": "Read secret contents.",
   "id": "/providers/Microsoft.Authorization/roleDefinitions/${kv_secrets_user}", "name": "${kv_secrets_user}",
   "permissions": [{"actions": [], "notActions": [], "notDataActions": [],
     "dataActions": ["Microsoft.KeyVault/vaults/secrets/getSecret/action",
                     "Microsoft.KeyVault/vaults/secrets/readMetadata/action"]}],
   "roleName": "Key Vault Secrets User", "roleType": "BuiltInRole",
   "type": "Microsoft.Authorization/roleDefinitions"}
]
EOF
{
  echo "["
  assignment 0e2e0011-0000-4000-8000-000000000011 "${wi_principal_id}" ServicePrincipal "${kv_secrets_user}" \
    "Key Vault Secrets User" "${kv_id}"
  echo "]"
} >policies/azure/key-vault-role-assignments.json
"${scopegate}" validate --policies policies >scopegate/validate.log 2>&1 ||
  die "scopegate validate rejected the e2e policies: $(cat scopegate/validate.log)"
log "policies: $(cat scopegate/validate.log)"

# The shipped apiserver manifests, templated only for paths and the port.
shipped="${repo}/deploy/apiserver"
sed -e "s#/etc/kubernetes/scopegate/#${work}/scopegate/#g" \
  "${shipped}/authorization-config.yaml" >scopegate/authorization-config.yaml
sed -e "s#/etc/kubernetes/scopegate/#${work}/scopegate/#g" \
  -e "s#https://127\.0\.0\.1:8443/authorize#https://127.0.0.1:${sg_port}/authorize#g" \
  "${shipped}/webhook-kubeconfig.yaml" >scopegate/webhook-kubeconfig.yaml
sed -e "s#/etc/kubernetes/scopegate/#${work}/scopegate/#g" \
  -e "s#https://127\.0\.0\.1:8443/authenticate#https://127.0.0.1:${sg_port}/authenticate#g" \
  "${shipped}/token-webhook-kubeconfig.yaml" >scopegate/token-webhook-kubeconfig.yaml
grep -q "server: https://127.0.0.1:${sg_port}/authenticate" scopegate/token-webhook-kubeconfig.yaml ||
  die "deploy/apiserver/token-webhook-kubeconfig.yaml: no server https://127.0.0.1:8443/authenticate to template"
# Fail loudly if the shipped files changed shape and the substitutions no longer apply.
grep -q "kubeConfigFile: ${work}/scopegate/webhook-kubeconfig.yaml" scopegate/authorization-config.yaml ||
  die "deploy/apiserver/authorization-config.yaml: no kubeConfigFile /etc/kubernetes/scopegate/webhook-kubeconfig.yaml to template"
grep -q "server: https://127.0.0.1:${sg_port}/authorize" scopegate/webhook-kubeconfig.yaml ||
  die "deploy/apiserver/webhook-kubeconfig.yaml: no server https://127.0.0.1:8443/authorize to template"
for f in ca.crt client.crt client.key; do
  grep -q "${work}/scopegate/${f}" scopegate/webhook-kubeconfig.yaml ||
    die "deploy/apiserver/webhook-kubeconfig.yaml: no /etc/kubernetes/scopegate/${f} to template"
done

# Structured authentication as shipped (deploy/apiserver/authentication-config.yaml): the loopback
# OIDC issuer stands in for Entra ID; its URL, audience and CA replace the placeholders. Extra keys
# must be domain-prefixed, hence scopegate.io/oid (scopegate --principal-claim scopegate.io/oid).
issuer_url="https://127.0.0.1:${issuer_port}"
audience=scopegate-e2e
awk -v url="${issuer_url}" -v aud="${audience}" -v ca=pki/ca.crt '
  $1 == "url:" && $2 ~ /TENANT_ID/ {
    print "      url: " url
    print "      certificateAuthority: |"
    while ((getline line < ca) > 0) print "        " line
    next
  }
  $1 == "audiences:" && $2 == "[APP_CLIENT_ID]" { print "      audiences: [" aud "]"; next }
  { print }
' "${shipped}/authentication-config.yaml" >authentication-config.yaml
grep -q "^      url: ${issuer_url}$" authentication-config.yaml ||
  die "deploy/apiserver/authentication-config.yaml: no issuer url with TENANT_ID to template"
grep -q "^      audiences: \[${audience}\]$" authentication-config.yaml ||
  die "deploy/apiserver/authentication-config.yaml: no audiences: [APP_CLIENT_ID] to template"
grep -q "key: scopegate.io/oid" authentication-config.yaml ||
  die "deploy/apiserver/authentication-config.yaml: no extra key scopegate.io/oid"
# The shipped username mapping prefixes Entra names: RoleBindings name users with it.
entra="aad:"
grep -q "'${entra}' +" authentication-config.yaml ||
  die "deploy/apiserver/authentication-config.yaml: the username prefix is no longer ${entra}"

kubeconfig() { # file token
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: e2e
    cluster:
      server: https://127.0.0.1:${api_port}
      certificate-authority: ${work}/pki/ca.crt
users:
  - name: user
    user:
      token: $2
contexts:
  - name: e2e
    context: {cluster: e2e, user: user}
current-context: e2e
EOF
}
kubeconfig kubeconfigs/admin "${admin_token}"
kubeconfig kubeconfigs/legacy "${legacy_token}"
for u in wh-dev wh-overage wh-disabled wh-pim; do
  kubeconfig "kubeconfigs/${u//-/}" "$(cat "entra/${u}.token")"
done

# --- start: etcd, OIDC issuer, kube-apiserver, scopegate -------------------------------------
"${bin}/etcd" --name=e2e --data-dir="${work}/etcd-data" \
  --listen-client-urls="http://127.0.0.1:${etcd_client_port}" \
  --advertise-client-urls="http://127.0.0.1:${etcd_client_port}" \
  --listen-peer-urls="http://127.0.0.1:${etcd_peer_port}" \
  --initial-advertise-peer-urls="http://127.0.0.1:${etcd_peer_port}" \
  --initial-cluster="e2e=http://127.0.0.1:${etcd_peer_port}" \
  --unsafe-no-fsync >etcd.log 2>&1 &
etcd_pid=$!

"${bin}/oidc-issuer" --listen "127.0.0.1:${issuer_port}" --issuer "${issuer_url}" \
  --tls-cert-file pki/issuer.crt --tls-private-key-file pki/issuer.key \
  --audience "${audience}" --token-dir tokens \
  --user "${dev}|${oid_dev}|${grp_finance_dev}" \
  --user "${reader}|${oid_reader}|" \
  --user "${platform}|${oid_platform}|${grp_platform}" \
  --user "${late}|${oid_late}|${grp_late}" \
  --user "${rbacuser}|${oid_rbac}|" >oidc-issuer.log 2>&1 &
issuer_pid=$!

wait_for etcd 30 curl -fsS "http://127.0.0.1:${etcd_client_port}/health"
wait_for "the OIDC issuer" 30 curl -fsS --cacert pki/ca.crt "${issuer_url}/.well-known/openid-configuration"
for u in dev reader platform late rbacuser; do
  name="${!u}"
  [[ -s "tokens/${name}.token" ]] || die "oidc-issuer wrote no token for ${name}"
  kubeconfig "kubeconfigs/${u}" "$(cat "tokens/${name}.token")"
done

t_api=${SECONDS}
"${bin}/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:${etcd_client_port}" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="${api_port}" \
  --tls-cert-file="${work}/pki/apiserver.crt" --tls-private-key-file="${work}/pki/apiserver.key" \
  --client-ca-file="${work}/pki/ca.crt" \
  --token-auth-file="${work}/tokens.csv" \
  --authentication-config="${work}/authentication-config.yaml" \
  --authentication-token-webhook-config-file="${work}/scopegate/token-webhook-kubeconfig.yaml" \
  --authentication-token-webhook-version=v1 --authentication-token-webhook-cache-ttl=10s \
  --authorization-config="${work}/scopegate/authorization-config.yaml" \
  --service-account-issuer="${sa_issuer}" \
  --service-account-key-file="${work}/pki/sa.pub" \
  --service-account-signing-key-file="${work}/pki/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --cert-dir="${work}/apiserver-certs" \
  --endpoint-reconciler-type=none >apiserver.log 2>&1 &
apiserver_pid=$!
wait_for "kube-apiserver /readyz" 90 curl -fsS --cacert pki/ca.crt \
  -H "Authorization: Bearer ${admin_token}" "https://127.0.0.1:${api_port}/readyz"
log "kube-apiserver ready on 127.0.0.1:${api_port} after $((SECONDS - t_api))s"

admin() { # kubectl as the break-glass admin, setup only: any failure aborts the run
  "${kubectl_bin}" --kubeconfig "${work}/kubeconfigs/admin" "$@" >>admin.log 2>&1 ||
    die "setup: kubectl $* (as e2e-admin) failed: $(tail -n 5 admin.log)"
}
admin create namespace finance-app
admin create namespace payments
admin create namespace wh-app
# No kube-controller-manager runs, so nothing creates the namespaces' "default" service
# accounts, which pod admission needs.
admin create serviceaccount default -n finance-app
admin create serviceaccount default -n payments
# scopegate's live RBAC source runs as a service account with exactly the shipped ClusterRole
# (deploy/kubernetes/rbac-live-source.yaml binds it to kube-system/scopegate).
admin create serviceaccount scopegate -n kube-system
admin apply -f "${repo}/deploy/kubernetes/rbac-live-source.yaml"
sa_token="$("${kubectl_bin}" --kubeconfig kubeconfigs/admin create token scopegate -n kube-system --duration=2h 2>>admin.log)" ||
  die "kubectl create token scopegate failed: $(tail -n 5 admin.log)"
kubeconfig scopegate/live-rbac.kubeconfig "${sa_token}"
# Workload identity: the apiserver's service-account issuer and its keys (its discovery JWKS)
# are scopegate's cluster issuer; with it, the live source watches ServiceAccounts too.
"${kubectl_bin}" --kubeconfig kubeconfigs/admin get --raw /openid/v1/jwks >scopegate/cluster-jwks.json 2>>admin.log ||
  die "kubectl get --raw /openid/v1/jwks failed: $(tail -n 5 admin.log)"

sg_args=(serve --policies "${work}/policies" --cluster-resource-id "${cluster_id}"
  --tls-cert-file "${work}/scopegate/server.crt" --tls-private-key-file "${work}/scopegate/server.key"
  --client-ca-file "${work}/scopegate/ca.crt" --allowed-client-names kube-apiserver
  --listen "127.0.0.1:${sg_port}" --admin-listen "127.0.0.1:${sg_admin_port}"
  --principal-claim scopegate.io/oid --reload-interval-seconds 2
  --authn-issuer "${entra_issuer}" --authn-audience "${aks_audience}" --authn-jwks-file "${work}/entra/jwks.json"
  --watch-cluster-rbac --kubeconfig "${work}/scopegate/live-rbac.kubeconfig"
  --cluster-issuer "${sa_issuer}" --cluster-jwks-file "${work}/scopegate/cluster-jwks.json"
  --log-format json)
start_scopegate() {
  RUST_LOG="${RUST_LOG:-info}" "${scopegate}" "${sg_args[@]}" >>scopegate.log 2>&1 &
  scopegate_pid=$!
  wait_for "scopegate /readyz" 30 curl -fsS "http://127.0.0.1:${sg_admin_port}/readyz"
}
start_scopegate
log "scopegate ready: $(curl -fsS "http://127.0.0.1:${sg_admin_port}/readyz")"

# The JWT authenticator fetches the issuer's keys asynchronously: wait until a token works.
t_jwt=${SECONDS} jwt_tries=0
until "${kubectl_bin}" --kubeconfig kubeconfigs/dev auth whoami >jwt-wait.log 2>&1; do
  jwt_tries=$((jwt_tries + 1))
  ((SECONDS - t_jwt >= 30)) && die "no JWT accepted within 30s (kubectl auth whoami as ${dev}): $(cat jwt-wait.log)"
  sleep 0.2
done
log "JWT authentication works (${jwt_tries} failed attempt(s) before, $((SECONDS - t_jwt))s after scopegate was ready)"

# SubjectAccessReview straight to scopegate (mutual TLS with the apiserver's client certificate).
sar() { # user namespace verb resource [groups-json-array [extra-json-object]]
  local groups=${5:-'["system:authenticated"]'} extra=${6:-'{}'}
  curl -sS --cacert scopegate/ca.crt --cert scopegate/client.crt --key scopegate/client.key \
    -H 'Content-Type: application/json' "https://127.0.0.1:${sg_port}/authorize" --data @- <<EOF
{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview",
 "spec":{"user":"$1","groups":${groups},"extra":${extra},
         "resourceAttributes":{"namespace":"$2","verb":"$3","resource":"$4"}}}
EOF
}

# sar_status USER NS VERB RESOURCE -> "allowed=true|false denied=true|false reason=..." (or the raw error)
sar_status() {
  local raw
  raw="$(sar "$@" 2>&1)"
  python3 -c '
import json, sys
try:
    st = json.loads(sys.argv[1])["status"]
except Exception:
    print("unparseable response: " + sys.argv[1]); sys.exit(0)
print("allowed=%s denied=%s reason=%s" % (str(st.get("allowed", False)).lower(),
      str(st.get("denied", False)).lower(), st.get("reason", "")))' "${raw}"
}
sar_wait() { # description expected-regex user ns verb resource [groups-json [extra-json]]
  local desc=$1 want=$2 t0 resp
  shift 2
  t0=$(date +%s.%N)
  for _ in $(seq 1 50); do
    resp="$(sar_status "$@")"
    grep -Eq -- "${want}" <<<"${resp}" && {
      pass "${desc} (after $(python3 -c "print(round($(date +%s.%N) - ${t0}, 1))")s)"
      return
    }
    sleep 0.2
  done
  fail "${desc}" "POST /authorize user=$1 ns=$2 verb=$3 resource=$4 -> ${resp}"
}

log "setup done after $((SECONDS - t_start))s; running the scenarios"
echo "scopegate e2e: kube-apiserver $("${bin}/kube-apiserver" --version | cut -d' ' -f2), cluster ${cluster_id}"

# --- scenario 0: wiring ----------------------------------------------------------------------
echo "== 0. wiring (shipped manifests, mutual TLS, JWT authentication)"
# Only non-comment lines count (the sed also rewrites paths in comments).
manifest_diff() { diff <(grep -v '^ *#' "$1") <(grep -v '^ *#' "$2"); }
changed="$(manifest_diff "${shipped}/authorization-config.yaml" scopegate/authorization-config.yaml | grep -c '^>')"
[[ ${changed} == 1 ]] && pass "0 authorization-config.yaml is the shipped file, only kubeConfigFile templated" ||
  fail "0 authorization-config.yaml is the shipped file, only kubeConfigFile templated" \
    "$(manifest_diff "${shipped}/authorization-config.yaml" scopegate/authorization-config.yaml)"
changed="$(manifest_diff "${shipped}/webhook-kubeconfig.yaml" scopegate/webhook-kubeconfig.yaml | grep -c '^>')"
[[ ${changed} == 4 ]] && pass "0 webhook-kubeconfig.yaml is the shipped file, only server + 3 file paths templated" ||
  fail "0 webhook-kubeconfig.yaml is the shipped file, only server + 3 file paths templated" \
    "$(manifest_diff "${shipped}/webhook-kubeconfig.yaml" scopegate/webhook-kubeconfig.yaml)"
if curl -sS --cacert scopegate/ca.crt -H 'Content-Type: application/json' --data '{}' \
  "https://127.0.0.1:${sg_port}/authorize" >curl-nocert.log 2>&1; then
  fail "0 scopegate refuses a caller without a client certificate" "$(cat curl-nocert.log)"
else
  pass "0 scopegate refuses a caller without a client certificate"
fi
changed="$(manifest_diff "${shipped}/token-webhook-kubeconfig.yaml" scopegate/token-webhook-kubeconfig.yaml | grep -c '^>')"
[[ ${changed} == 4 ]] && pass "0 token-webhook-kubeconfig.yaml is the shipped file, only server + 3 file paths templated" ||
  fail "0 token-webhook-kubeconfig.yaml is the shipped file, only server + 3 file paths templated" \
    "$(manifest_diff "${shipped}/token-webhook-kubeconfig.yaml" scopegate/token-webhook-kubeconfig.yaml)"
expect ok "0 an Entra user (JWT from the loopback issuer) is authenticated" dev auth whoami

# --- scenario 1: developer, Writer in namespace finance-app ----------------------------------
echo "== 1. developer (group with Writer at .../namespaces/finance-app)"
expect ok "1 dev lists pods in finance-app" dev get pods -n finance-app
expect ok "1 dev creates a deployment in finance-app" dev create deployment web --image=registry.k8s.io/pause:3.10 -n finance-app
expect ok "1 dev creates a configmap in finance-app" dev create configmap app-settings --from-literal=mode=e2e -n finance-app
expect ok "1 dev reads the deployment back" dev get deployment web -n finance-app
expect forbidden "1 dev is forbidden to list pods in payments" dev get pods -n payments
expect forbidden "1 dev is forbidden to create a configmap in payments" dev create configmap x --from-literal=a=b -n payments
expect forbidden "1 dev is forbidden at cluster scope (list namespaces)" dev get namespaces
expect forbidden "1 dev is forbidden at cluster scope (list nodes)" dev get nodes

# --- scenario 2: reader, Reader at cluster scope ---------------------------------------------
echo "== 2. reader (user with Reader at the cluster scope)"
admin run web-0 --image=registry.k8s.io/pause:3.10 -n finance-app --restart=Never
admin run pay-0 --image=registry.k8s.io/pause:3.10 -n payments --restart=Never
admin create secret generic db-password --from-literal=password=hunter2 -n finance-app
expect ok "2 reader lists pods in finance-app" reader get pods -n finance-app
expect ok "2 reader lists pods in payments" reader get pods -n payments
expect ok "2 reader lists pods in kube-system" reader get pods -n kube-system
expect ok "2 reader lists pods in all namespaces" reader get pods -A
expect forbidden "2 reader cannot read secrets" reader get secrets -n finance-app
expect forbidden "2 reader cannot create a configmap" reader create configmap y --from-literal=a=b -n finance-app
# (`kubectl auth can-i create pods/exec` would ask about a pod NAMED "exec": TYPE/NAME syntax.)
expect no "2 reader: auth can-i create pods --subresource=exec says no" reader auth can-i create pods --subresource=exec -n finance-app
run reader get pod web-0 -n finance-app -o 'jsonpath={.status.phase}'
[[ ${RC} == 0 && ${OUT} == Pending ]] && pass "2 the target pod exists and is Pending (no nodes)" ||
  fail "2 the target pod exists and is Pending (no nodes)" "$(last)"
expect forbidden "2 reader: kubectl exec into the pod is Forbidden" reader exec web-0 -n finance-app -- true
expect_match "2 ... on pods/exec" 'cannot (get|create) resource "pods/exec"'
# Contrast: Writer's pods/* covers pods/exec/action, so dev gets past authorization and fails
# only because the pod has no node.
expect notforbidden "2 dev (Writer) is authorized for exec (fails later: pod has no node)" dev exec web-0 -n finance-app -- true

# --- scenario 3: deny assignment beats the Writer grant --------------------------------------
echo "== 3. deny assignment (secrets/* for everyone except the platform group)"
expect forbidden "3 dev (Writer includes secrets) cannot list secrets" dev get secrets -n finance-app
expect_match "3 ... and the 403 names the deny assignment" "denied by deny assignment .${deny_name}"
expect forbidden "3 dev cannot create a secret" dev create secret generic s1 --from-literal=a=b -n finance-app
expect_match "3 ... and the 403 names the deny assignment" "deny assignment .${deny_name}"
expect no "3 dev: auth can-i get secrets says no" dev auth can-i get secrets -n finance-app
expect_match "3 ... with the deny assignment as the reason" "no - Azure RBAC: denied by deny assignment .${deny_name}"
expect ok "3 platform (excluded from the deny) lists secrets" platform get secrets -n finance-app
expect ok "3 platform reads a secret" platform get secret db-password -n finance-app

# --- scenario 4: cluster-scoped vs namespaced ------------------------------------------------
echo "== 4. cluster-scoped list vs its own namespace object"
expect forbidden "4 dev cannot list namespaces" dev get namespaces
expect ok "4 dev can get namespace finance-app" dev get namespace finance-app
expect forbidden "4 dev cannot get namespace payments" dev get namespace payments
expect ok "4 reader (cluster scope) can list namespaces" reader get namespaces

# --- scenario 5: kubectl auth can-i ----------------------------------------------------------
echo "== 5. kubectl auth can-i"
expect yes "5 dev can-i create deployments -n finance-app" dev auth can-i create deployments.apps -n finance-app
expect yes "5 dev can-i delete pods -n finance-app" dev auth can-i delete pods -n finance-app
expect yes "5 dev can-i create pods --subresource=exec -n finance-app" dev auth can-i create pods --subresource=exec -n finance-app
expect no "5 reader can-i get pods --subresource=exec -n finance-app" reader auth can-i get pods --subresource=exec -n finance-app
expect no "5 dev can-i list pods -n payments" dev auth can-i list pods -n payments
expect no "5 dev can-i list namespaces" dev auth can-i list namespaces
expect no "5 reader can-i delete pods -n payments" reader auth can-i delete pods -n payments
expect yes "5 reader can-i watch deployments -n payments" reader auth can-i watch deployments.apps -n payments
expect yes "5 platform can-i '*' '*'" platform auth can-i '*' '*'
expect ok "5 dev auth can-i --list -n finance-app works" dev auth can-i --list -n finance-app
expect_match "5 ... and shows RBAC rules (selfsubjectreviews)" 'selfsubjectreviews'
expect_match "5 ... with the webhook warning" 'webhook authorizer does not support user rule resolution'

# --- scenario 6: policy edited while running -------------------------------------------------
echo "== 6. policy file edited while the apiserver runs"
expect forbidden "6 late user is forbidden before the grant" late get pods -n finance-app
write_assignments "$(assignment 0e2e0006-0000-4000-8000-000000000006 "${grp_late}" Group "${reader_role}" \
  "Azure Kubernetes Service RBAC Reader" "${cluster_id}/namespaces/finance-app")"
t6=$(date +%s.%N) granted=0
sar_wait "6 scopegate reloaded the edited file: allows the new group" '^allowed=true .*0e2e0006' \
  "${late}" finance-app list pods "[\"${grp_late}\",\"system:authenticated\"]" "{\"scopegate.io/oid\":[\"${oid_late}\"]}"
while :; do
  run late get pods -n finance-app
  ((RC == 0)) && { granted=1; break; }
  python3 -c "import sys; sys.exit(0 if $(date +%s.%N) - ${t6} < 40 else 1)" || break
  sleep 0.5
done
took=$(python3 -c "print(round($(date +%s.%N) - ${t6}, 1))")
if ((granted)); then
  pass "6 late user allowed through kubectl ${took}s after role-assignments.json was edited (unauthorizedTTL 10s)"
else
  fail "6 late user allowed within 40s of the edit" "still: $(last)"
fi
expect forbidden "6 ... still only Reader: cannot create a configmap" late create configmap z --from-literal=a=b -n finance-app

# --- scenario 8: live RBAC source --------------------------------------------------------------
echo "== 8. RoleBinding created with kubectl, seen by scopegate's live RBAC source"
admin create rolebinding bob-view --clusterrole=view --user=bob -n finance-app
admin create role configmap-reader --verb=get,list,watch --resource=configmaps -n finance-app
admin create rolebinding carol-cm --role=configmap-reader --user=carol -n finance-app
sar_wait "8 SAR carol list configmaps (Role configmap-reader) -> allowed by RoleBinding" \
  '^allowed=true .*RBAC: allowed by RoleBinding "carol-cm/finance-app" of Role "configmap-reader" to User "carol"' carol finance-app list configmaps
sar_wait "8 SAR bob list pods (ClusterRole view) -> allowed by RoleBinding" \
  '^allowed=true .*RBAC: allowed by RoleBinding "bob-view/finance-app" of ClusterRole "view"' bob finance-app list pods
resp="$(sar_status bob payments list pods)"
[[ ${resp} == "allowed=false denied=false"* ]] &&
  pass "8 SAR bob list pods in payments -> no opinion (the binding is namespaced)" ||
  fail "8 SAR bob list pods in payments -> no opinion (the binding is namespaced)" "${resp}"
resp="$(sar_status carol finance-app list pods)"
[[ ${resp} == "allowed=false denied=false"* ]] &&
  pass "8 SAR carol list pods -> no opinion (the Role only covers configmaps)" ||
  fail "8 SAR carol list pods -> no opinion (the Role only covers configmaps)" "${resp}"
# An update event: the Role loses `list`.
admin patch role configmap-reader -n finance-app --type=json \
  -p '[{"op":"replace","path":"/rules/0/verbs","value":["get"]}]'
sar_wait "8 Role edited with kubectl (list removed) -> carol list configmaps no longer allowed" \
  '^allowed=false denied=false' carol finance-app list configmaps
resp="$(sar_status carol finance-app get configmaps)"
[[ ${resp} == "allowed=true "*'RoleBinding "carol-cm/finance-app"'* ]] &&
  pass "8 ... but get still is" || fail "8 ... but get still is" "${resp}"
admin delete rolebinding carol-cm -n finance-app
sar_wait "8 RoleBinding deleted with kubectl -> carol get configmaps no longer allowed" '^allowed=false denied=false' carol finance-app get configmaps
# Information: without kube-controller-manager nobody fills in the aggregated ClusterRole "view"
# in the cluster; scopegate aggregates by itself (so it allows bob above).
view_rules="$("${kubectl_bin}" --kubeconfig kubeconfigs/admin get clusterrole view -o json 2>&1 |
  python3 -c 'import json, sys; print(len(json.load(sys.stdin).get("rules") or []))' 2>&1)"
echo "      info: ClusterRole view as stored in the cluster has ${view_rules} rule(s) (no kube-controller-manager aggregates it)"

# --- scenario 9: the RBAC authorizer after the webhook ------------------------------------------
echo "== 9. in-tree RBAC after scopegate (no opinion falls through)"
admin create role cm-reader --verb=get,list --resource=configmaps -n finance-app
admin create rolebinding legacy-cm --role=cm-reader --user=legacy-user -n finance-app
admin create rolebinding rbac-user-cm --role=cm-reader --user="${entra}${rbacuser}" -n finance-app
expect ok "9 legacy-user (no oid) lists configmaps via its RoleBinding" legacy get configmaps -n finance-app
expect forbidden "9 legacy-user cannot list pods (nothing grants it)" legacy get pods -n finance-app
expect ok "9 Entra user without Azure roles lists configmaps via a RoleBinding" rbacuser get configmaps -n finance-app
expect forbidden "9 ... but not secrets (the Role does not grant them)" rbacuser get secrets -n finance-app
# An RBAC grant cannot override an Azure deny assignment: `denied` ends the chain.
admin create role secret-reader --verb=get,list --resource=secrets -n finance-app
admin create rolebinding rbac-user-secrets --role=secret-reader --user="${entra}${rbacuser}" -n finance-app
expect forbidden "9 a RoleBinding on secrets does not beat the deny assignment" rbacuser get secrets -n finance-app
expect_match "9 ... (403 names the deny assignment)" "deny assignment .${deny_name}"
expect ok "9 Entra user runs kubectl auth whoami" dev auth whoami -o json
expect_match "9 ... whoami shows the oid extra" "\"scopegate.io/oid\": \[[[:space:]]*\"${oid_dev}\""
expect_match "9 ... and the group object id" "\"${grp_finance_dev}\""
expect ok "9 legacy-user runs kubectl auth whoami" legacy auth whoami
grep -q "\"user\":\"${entra}${dev}\"" scopegate.log && pass "9 scopegate's decision log has the apiserver's reviews for ${dev}" ||
  fail "9 scopegate's decision log has the apiserver's reviews for ${dev}" "$(tail -n 3 scopegate.log)"

# --- scenario 11: workload identity through the live source ---------------------------------------
echo "== 11. CheckAccess about a service account created with kubectl (workload identity, live source)"
# A workload question straight to scopegate's CheckAccess (mutual TLS, the apiserver's client
# certificate), about the vault secret: getSecret (Key Vault Secrets User grants it) and
# vaults/write (nothing grants it). Sets CA to "http=CODE DECISION DECISION | REASON | REASON"
# or "http=CODE error: MESSAGE".
kv_secret="${kv_id}/secrets/db-password"
wi_actions='[{"id":"Microsoft.KeyVault/vaults/secrets/getSecret/action","isDataAction":true},
             {"id":"Microsoft.KeyVault/vaults/write","isDataAction":false}]'
wi_name="\"serviceAccount\":\"system:serviceaccount:payments:api\",\"issuer\":\"${sa_issuer}\""
CA=""
wi_ask() { # subject-fields mode
  local body code
  body="{$1,\"resource\":\"${kv_secret}\",\"actions\":${wi_actions},\"mode\":\"$2\"}"
  code="$(curl -sS -o checkaccess-answer.json -w '%{http_code}' --cacert scopegate/ca.crt \
    --cert scopegate/client.crt --key scopegate/client.key -H 'Content-Type: application/json' \
    "https://127.0.0.1:${sg_port}${kv_secret}/providers/Microsoft.Authorization/checkaccess?api-version=2022-04-01" \
    --data "${body}" 2>&1)"
  CA="$(python3 -c '
import json, sys
code, raw = sys.argv[1], open(sys.argv[2]).read() if sys.argv[2] else ""
try:
    answer = json.loads(raw)
except Exception:
    print("http=%s unparseable: %s" % (code, raw[:300])); sys.exit(0)
if isinstance(answer, list):
    print("http=%s %s | %s" % (code, " ".join(d.get("accessDecision", "?") for d in answer),
          " | ".join(d.get("reason", "") for d in answer)))
else:
    print("http=%s error: %s" % (code, (answer.get("error") or {}).get("message", raw[:300])))
' "${code}" "$([[ -f checkaccess-answer.json ]] && echo checkaccess-answer.json)")"
  rm -f checkaccess-answer.json
  printf '$ POST %s/providers/Microsoft.Authorization/checkaccess\n%s\n-> %s\n\n' "${kv_secret}" "${body}" "${CA}" >>checkaccess.log
}
ca_expect() { # description regex subject-fields mode
  wi_ask "$3" "$4"
  if grep -Eq -- "$2" <<<"${CA}"; then pass "$1"; else fail "$1" "expected /$2/, mode $4: ${CA}"; fi
}
ca_wait() { # description regex subject-fields mode: poll for up to 30 s
  local t0
  t0=$(date +%s.%N)
  while :; do
    wi_ask "$3" "$4"
    if grep -Eq -- "$2" <<<"${CA}"; then
      pass "$1 (after $(python3 -c "print(round($(date +%s.%N) - ${t0}, 1))")s)"
      return
    fi
    python3 -c "import sys; sys.exit(0 if $(date +%s.%N) - ${t0} < 30 else 1)" || break
    sleep 0.2
  done
  fail "$1" "expected /$2/ within 30s, mode $4: ${CA}"
}
policy_state_11="$(stat -c '%n %Y %s' policies/azure/*)"
ca_expect "11 before the service account exists: NotAllowed, the reason names payments/api" \
  '^http=200 NotAllowed NotAllowed \| service account .payments/api. is not' "${wi_name}" configured
expect ok "11 kubectl create serviceaccount api -n payments" admin create serviceaccount api -n payments
expect ok "11 kubectl annotate it with the managed identity's client id" \
  admin annotate serviceaccount api -n payments "azure.workload.identity/client-id=${wi_client_id}"
ca_wait "11 live source: getSecret on the vault's secret Allowed, vaults/write NotAllowed" \
  '^http=200 Allowed NotAllowed \| as managed identity .id-payments-api.' "${wi_name}" configured
expect ok "11 kubectl annotate: client-id annotation removed" \
  admin annotate serviceaccount api -n payments azure.workload.identity/client-id-
ca_wait "11 configured mode: NotAllowed, the reason names the missing annotation" \
  '^http=200 NotAllowed NotAllowed \| service account .payments/api. has no .azure\.workload\.identity/client-id. annotation' \
  "${wi_name}" configured
ca_expect "11 possible mode: still Allowed (the federated credential trusts the account)" \
  '^http=200 Allowed NotAllowed' "${wi_name}" possible
expect ok "11 kubectl annotate: client-id annotation back" \
  admin annotate serviceaccount api -n payments "azure.workload.identity/client-id=${wi_client_id}"
ca_wait "11 configured mode: Allowed again" '^http=200 Allowed NotAllowed' "${wi_name}" configured
[[ "$(stat -c '%n %Y %s' policies/azure/*)" == "${policy_state_11}" ]] &&
  pass "11 ... the policy files did not change meanwhile" || fail "11 ... the policy files did not change meanwhile"
# Projected tokens: the apiserver's own service-account keys (its discovery JWKS; no
# kube-controller-manager needed) become scopegate's cluster issuer keys.
python3 -c 'import json, sys; assert json.load(open(sys.argv[1]))["keys"]' scopegate/cluster-jwks.json 2>/dev/null &&
  pass "11 kubectl get --raw /openid/v1/jwks serves the service-account signing key (scopegate's --cluster-jwks-file)" ||
  fail "11 kubectl get --raw /openid/v1/jwks serves the service-account signing key" "$(cat scopegate/cluster-jwks.json)"
stop "${scopegate_pid}" scopegate 10
scopegate_pid=""
start_scopegate
wi_ask "${wi_name}" configured
by_name="${CA}"
wi_ask '"serviceAccount":"system:serviceaccount:payments:api"' configured
[[ ${CA} == "${by_name}" && ${CA} == "http=200 Allowed NotAllowed"* ]] &&
  pass "11 restarted: Allowed at once (ServiceAccounts listed before ready); without issuer the same answer" ||
  fail "11 restarted: Allowed at once; without issuer the same answer" \
    "without issuer: ${CA}"$'\n'"with issuer:    ${by_name}"
token_for() { # audience -> TOKEN (kubectl create token as the admin)
  run admin create token api -n payments --audience "$1" --duration=10m
  TOKEN="${OUT##*$'\n'}"
  ((RC == 0)) && pass "11 kubectl create token api -n payments --audience $1" ||
    fail "11 kubectl create token api -n payments --audience $1" "$(last)"
}
token_for api://AzureADTokenExchange
wi_ask "\"serviceAccountToken\":\"${TOKEN}\"" configured
[[ ${CA} == "${by_name}" && ${CA} == "http=200 Allowed NotAllowed"* ]] &&
  pass "11 the projected token (verified against the apiserver's keys) answers as the name: Allowed, NotAllowed" ||
  fail "11 the projected token answers as the name" "by token: ${CA}"$'\n'"by name:  ${by_name}"
ca_expect "11 ... also in possible mode" '^http=200 Allowed NotAllowed' "\"serviceAccountToken\":\"${TOKEN}\"" possible
token_for e2e-another-audience
ca_expect "11 a token for another audience: HTTP 400, refused (never an answer)" \
  '^http=400 error: service-account token refused' "\"serviceAccountToken\":\"${TOKEN}\"" configured

# --- scenario 7: scopegate stopped (last: it restarts scopegate at the end) -------------------
echo "== 7. scopegate stopped (failurePolicy NoOpinion)"
stop "${scopegate_pid}" scopegate 10
scopegate_pid=""
# Names never requested before, so no cached allow (authorizedTTL 30s) answers for the webhook.
miss="never-asked-$(openssl rand -hex 4)"
run dev get configmap "${miss}" -n finance-app
if [[ ${OUT} == *"(InternalError)"* ]]; then
  pass "7 dev (only Azure allows) now fails: HTTP 500 InternalError (webhook error surfaces)"
elif [[ ${OUT} == *"(Forbidden)"* ]]; then
  pass "7 dev (only Azure allows) now fails: 403 Forbidden"
else
  fail "7 dev (only Azure allows) now fails with 500 or 403" "$(last)"
fi
echo "      recorded: $(head -n 1 <<<"${OUT}" | cut -c1-300)"
expect ok "7 break-glass admin (system:masters) still works" admin get namespaces
expect ok "7 legacy-user's RoleBinding still works (webhook NoOpinion -> RBAC)" legacy get configmaps -n finance-app
expect ok "7 Entra user's RoleBinding still works" rbacuser get configmap app-settings -n finance-app
# The documented price of failurePolicy NoOpinion: deny assignments are not enforced while
# scopegate is down (a name never asked before, so no cached "denied" answers).
expect ok "7 fail-open: the RoleBinding on secrets now works (deny assignment not enforced)" rbacuser get secret db-password -n finance-app
expect ok "7 kubectl auth whoami still works for an Entra user" reader auth whoami
start_scopegate
expect notforbidden "7 after restarting scopegate dev is authorized again" dev get configmap "${miss}-2" -n finance-app
expect_match "7 ... (NotFound, i.e. past authorization)" 'NotFound'

# --- scenario 10: scopegate as the token webhook (last: it restarts scopegate as AKS runs it) ---
echo "== 10. Entra tokens through scopegate's /authenticate: AKS's extra[\"oid\"], directory, PIM"
stop "${scopegate_pid}" scopegate 10
scopegate_pid=""
# As AKS: the authorizer reads the unprefixed oid of scopegate's own TokenReview answer, and
# groups come from the directory snapshot (current membership rather than the token's).
for i in "${!sg_args[@]}"; do [[ ${sg_args[i]} == scopegate.io/oid ]] && sg_args[i]=oid; done
sg_args+=(--groups-from directory)
start_scopegate
expect ok "10 a token only scopegate accepts (issuer sts.windows.net, offline JWKS) authenticates" whdev auth whoami -o json
expect_match "10 ... username from upn" '"username": "wh-dev@contoso.com"'
expect_match "10 ... extra[\"oid\"] unprefixed, as AKS hands it to the authorizer" "\"oid\": \[[[:space:]]*\"${oid_wh_dev}\""
expect ok "10 the SubjectAccessReview carries that oid: Reader via a nested group lists pods in wh-app" whdev get pods -n wh-app
expect forbidden "10 ... and nothing in finance-app" whdev get pods -n finance-app
expect ok "10 overage token (no groups claim): groups from the directory, lists pods in wh-app" whoverage get pods -n wh-app
expect ok "10 ... whoami shows the directory's groups" whoverage auth whoami -o json
expect_match "10 ... (the team group's parent too)" "\"${grp_wh}\""
run whdisabled get pods -n wh-app
[[ ${RC} != 0 && ${OUT} == *"Unauthorized"* ]] && pass "10 a disabled account (accountEnabled false) is refused: 401" ||
  fail "10 a disabled account (accountEnabled false) is refused: 401" "$(last)"
# Revocation: wh-dev leaves the team group in the directory file; its token still lists it.
t_rev=${SECONDS} i=0 revoked=0
write_directory "[$(member "${oid_wh_overage}")]"
while ((SECONDS - t_rev < 60)); do
  i=$((i + 1))
  kc whdev get configmap "revoke-probe-${i}" -n wh-app # a new name each time: no cached answer
  if ((RC != 0)) && [[ ${OUT} == *"(Forbidden)"* ]]; then revoked=1; break; fi
  sleep 0.3
done
((revoked)) && pass "10 removed from the group in the directory file: Azure grant revoked after $((SECONDS - t_rev))s (token unchanged)" ||
  fail "10 removed from the group in the directory file: Azure grant revoked within 60s" "$(last)"
# PIM: an activation window 15 s from now, 15 s long; no policy file changes after this one.
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
pim_start=$(($(date +%s) + 15))
pim_end=$((pim_start + 15))
pim_id=0e2e0f1a-0000-4000-8000-000000000001
cat >policies/azure/pim-instances.json <<EOF
{"value": [{
  "id": "${cluster_id}/namespaces/wh-app/providers/Microsoft.Authorization/roleAssignmentScheduleInstances/${pim_id}",
  "name": "${pim_id}", "type": "Microsoft.Authorization/roleAssignmentScheduleInstances",
  "properties": {"scope": "${cluster_id}/namespaces/wh-app", "roleDefinitionId": "$(role_def "${reader_role}")",
    "principalId": "${oid_wh_pim}", "principalType": "User", "status": "Provisioned",
    "startDateTime": "$(iso "${pim_start}")", "endDateTime": "$(iso "${pim_end}")",
    "assignmentType": "Activated", "memberType": "Direct"}}]}
EOF
policy_state="$(stat -c '%n %Y %s' policies/azure/*)"
sleep 3 # the reload that picks the file up
expect forbidden "10 PIM: before the activation window wh-pim cannot read configmaps" whpim get configmap pim-before -n wh-app
pim_wait() { # description open|closed boundary
  while (($(date +%s) < $3)); do sleep 0.1; done
  local n=0 t0=${SECONDS}
  while ((SECONDS - t0 < 20)); do
    n=$((n + 1))
    kc whpim get configmap "pim-$2-${n}" -n wh-app # a new name each time: no cached answer
    if [[ $2 == open && ${OUT} != *"(Forbidden)"* && ${OUT} == *"NotFound"* ]] ||
      [[ $2 == closed && ${OUT} == *"(Forbidden)"* ]]; then
      pass "$1 ($(($(date +%s) - $3))s after the boundary, ${n} request(s))"
      return
    fi
    sleep 0.2
  done
  fail "$1" "$(last)"
}
pim_wait "10 PIM: the window opens and wh-pim reads configmaps, no reload" open "${pim_start}"
pim_wait "10 PIM: the window closes and access ends" closed "${pim_end}"
[[ "$(stat -c '%n %Y %s' policies/azure/*)" == "${policy_state}" ]] && pass "10 ... the policy files did not change meanwhile" ||
  fail "10 ... the policy files did not change meanwhile"

# --- scenario 12: the Helm chart's renders against the real kube-apiserver -------------------------
echo "== 12. Helm chart: every value set rendered by helm and applied with server-side dry-run"
# helm from its Go module (deploy/helm/tools, the build deploy/helm/check.sh caches), and
# cert-manager's own CRDs from its Go module, so Issuer and Certificate are checked against their
# real schemas. The chart goes to its own namespace and release so that nothing collides with the
# objects of the scenarios above; the Service IP moves into this apiserver's
# --service-cluster-ip-range (10.0.0.0/24), as every install must.
helm_ns=scopegate-helm
helm_bin="" crds=""
if helm_dir="$("${repo}/deploy/helm/tools/build-helm.sh" 2>>admin.log)"; then
  helm_bin="${helm_dir}/helm"
  pass "12 helm built from its Go module ($("${helm_bin}" version --short 2>/dev/null))"
else
  fail "12 helm built from its Go module" "$(tail -n 5 admin.log)"
fi
if crds="$("${repo}/deploy/helm/tools/cert-manager-crds.sh" 2>>admin.log)"; then
  run admin apply --server-side -f "${crds}/cert-manager.io_issuers.yaml" -f "${crds}/cert-manager.io_certificates.yaml"
  if ((RC == 0)); then
    run admin wait --for=condition=Established --timeout=30s crd/issuers.cert-manager.io crd/certificates.cert-manager.io
  fi
  ((RC == 0)) && pass "12 cert-manager's Issuer and Certificate CRDs (module ${crds%/deploy/crds}) established" ||
    fail "12 cert-manager's Issuer and Certificate CRDs established" "$(last)"
else
  fail "12 cert-manager's CRDs from its Go module" "$(tail -n 5 admin.log)"
fi
admin create namespace "${helm_ns}"
# No kube-controller-manager: the static Pod's dry run needs the namespace's default account.
admin create serviceaccount default -n "${helm_ns}"
mkdir -p helm
helm_sets=(default "${repo}"/deploy/helm/ci/*.yaml)
for values in "${helm_sets[@]}"; do
  name="$(basename "${values}" .yaml)"
  args=(template scopegate-helm "${repo}/deploy/helm/scopegate" -n "${helm_ns}" --set service.clusterIP=10.0.0.50)
  [[ ${values} == default ]] || args+=(-f "${values}")
  [[ -n "${helm_bin}" ]] || { fail "12 ${name}: rendered" "no helm"; continue; }
  if ! "${helm_bin}" "${args[@]}" >"helm/${name}.yaml" 2>"helm/${name}.err"; then
    fail "12 ${name}: helm template" "$(cat "helm/${name}.err")"
    continue
  fi
  want="$(grep -c '^kind: ' "helm/${name}.yaml")"
  run admin apply --server-side --dry-run=server -f "helm/${name}.yaml"
  got="$(grep -c '(server dry run)' <<<"${OUT}")"
  if ((RC == 0)) && ((got == want)) && ((want > 0)); then
    pass "12 ${name}: all ${want} objects pass server-side dry-run ($(grep '^kind: ' "helm/${name}.yaml" | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $3; sep=", "}'))"
  else
    fail "12 ${name}: all ${want} objects pass server-side dry-run (${got} did)" "$(last)"
  fi
done
# The staticPod command of the chart README, and a Service IP outside the range is refused (the
# dry run validates, it is not a rubber stamp).
if [[ -n "${helm_bin}" ]] &&
  "${helm_bin}" template scopegate-helm "${repo}/deploy/helm/scopegate" -n "${helm_ns}" --set mode=staticPod \
    --show-only templates/static-pod.yaml >helm/static-pod-show-only.yaml 2>helm/static-pod-show-only.err; then
  expect ok "12 static-pod (--show-only): the static Pod passes server-side dry-run" admin apply --server-side --dry-run=server -f helm/static-pod-show-only.yaml
  expect_match "12 ... as a Pod" 'pod/scopegate-helm serverside-applied \(server dry run\)'
else
  fail "12 static-pod (--show-only): helm template" "$(cat helm/static-pod-show-only.err 2>/dev/null)"
fi
if [[ -n "${helm_bin}" ]] &&
  "${helm_bin}" template scopegate-helm "${repo}/deploy/helm/scopegate" -n "${helm_ns}" \
    --show-only templates/service.yaml >helm/service-out-of-range.yaml 2>/dev/null; then
  run admin apply --server-side --dry-run=server -f helm/service-out-of-range.yaml
  ((RC != 0)) && [[ ${OUT} == *"10.96.0.50"* ]] &&
    pass "12 the default clusterIP 10.96.0.50, outside this apiserver's range, is refused by the dry run" ||
    fail "12 the default clusterIP 10.96.0.50, outside this apiserver's range, is refused by the dry run" "$(last)"
fi
run admin get deployments,daemonsets,services,pods,certificates,issuers -n "${helm_ns}" -o name
[[ ${RC} == 0 && -z ${OUT} ]] && pass "12 ... and the dry runs created nothing in ${helm_ns}" ||
  fail "12 ... and the dry runs created nothing in ${helm_ns}" "$(last)"

# --- summary ---------------------------------------------------------------------------------
log "scenarios done after $((SECONDS - t_start))s"
echo "${passed} passed, ${failed} failed"
((failed == 0))
