#!/usr/bin/env bash
# Smoke test for the binaries built by build-binaries.sh: starts etcd and a
# real kube-apiserver on 127.0.0.1 (free ports, throwaway certs in a temp
# dir), checks `kubectl get ns` with a static admin token, then stops both.
# Everything stays on the loopback interface.
#
#   tests/e2e/smoke-apiserver.sh            # builds/uses ${SCOPEGATE_E2E_BIN}
#   KEEP=1 tests/e2e/smoke-apiserver.sh     # keep the temp dir (logs) afterwards
#
# Extra kube-apiserver flags can be appended with APISERVER_EXTRA_ARGS.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$("${here}/build-binaries.sh")"
work="$(mktemp -d -t scopegate-smoke.XXXXXX)"
etcd_pid="" apiserver_pid=""

log() { printf '[smoke] %s\n' "$*" >&2; }

# SIGTERM, then SIGKILL after a grace period. The apiserver must be stopped
# before etcd: on SIGTERM it removes its own endpoint from etcd and hangs,
# retrying forever, if etcd is already gone.
stop() { # pid name grace-seconds
  local pid=$1 name=$2 grace=$3 start=${SECONDS}
  [[ -n "${pid}" ]] || return 0
  kill "${pid}" 2>/dev/null || return 0
  while kill -0 "${pid}" 2>/dev/null; do
    if (( SECONDS - start >= grace )); then
      log "${name} still running after ${grace}s, sending SIGKILL"
      kill -9 "${pid}" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  wait "${pid}" 2>/dev/null || true
  log "${name} stopped after $((SECONDS - start))s"
}

cleanup() {
  local rc=$?
  stop "${apiserver_pid}" kube-apiserver 15
  stop "${etcd_pid}" etcd 10
  if [[ ${rc} -ne 0 ]]; then
    log "FAILED (rc=${rc}); last lines of the logs:"
    tail -n 25 "${work}/etcd.log" "${work}/apiserver.log" >&2 2>/dev/null || true
  fi
  if [[ "${KEEP:-0}" == 1 ]]; then log "kept ${work}"; else rm -rf "${work}"; fi
  exit "${rc}"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for() { # description timeout-seconds command...
  local what=$1 timeout=$2 start=${SECONDS}
  shift 2
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS - start >= timeout )); then log "timed out waiting for ${what}"; return 1; fi
    sleep 0.2
  done
}

etcd_client_port="$(free_port)"
etcd_peer_port="$(free_port)"
apiserver_port="$(free_port)"

# --- throwaway PKI -----------------------------------------------------------
cd "${work}"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=scopegate-e2e-ca" \
  -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
  -keyout apiserver.key -out apiserver.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >apiserver.ext
openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
  -extfile apiserver.ext -out apiserver.crt 2>/dev/null
# Service-account token signing key pair.
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
# Static token file: token,user,uid,"group1,group2"
admin_token="$(openssl rand -hex 16)"
echo "${admin_token},e2e-admin,e2e-admin-uid,\"system:masters\"" >tokens.csv

# --- etcd --------------------------------------------------------------------
t0=${SECONDS}
"${bin}/etcd" \
  --name=e2e \
  --data-dir="${work}/etcd-data" \
  --listen-client-urls="http://127.0.0.1:${etcd_client_port}" \
  --advertise-client-urls="http://127.0.0.1:${etcd_client_port}" \
  --listen-peer-urls="http://127.0.0.1:${etcd_peer_port}" \
  --initial-advertise-peer-urls="http://127.0.0.1:${etcd_peer_port}" \
  --initial-cluster="e2e=http://127.0.0.1:${etcd_peer_port}" \
  --unsafe-no-fsync \
  >"${work}/etcd.log" 2>&1 &
etcd_pid=$!
wait_for etcd 30 curl -fsS "http://127.0.0.1:${etcd_client_port}/health"
log "etcd ready on 127.0.0.1:${etcd_client_port} after $((SECONDS - t0))s"

# --- kube-apiserver ----------------------------------------------------------
t1=$(date +%s.%N)
# shellcheck disable=SC2086
"${bin}/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:${etcd_client_port}" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --secure-port="${apiserver_port}" \
  --tls-cert-file="${work}/apiserver.crt" \
  --tls-private-key-file="${work}/apiserver.key" \
  --client-ca-file="${work}/ca.crt" \
  --token-auth-file="${work}/tokens.csv" \
  --authorization-mode=Node,RBAC \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="${work}/sa.pub" \
  --service-account-signing-key-file="${work}/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --cert-dir="${work}/apiserver-certs" \
  --endpoint-reconciler-type=none \
  ${APISERVER_EXTRA_ARGS:-} \
  >"${work}/apiserver.log" 2>&1 &
apiserver_pid=$!

kubectl=("${bin}/kubectl" --server="https://127.0.0.1:${apiserver_port}"
  --certificate-authority="${work}/ca.crt" --token="${admin_token}")
wait_for "kube-apiserver /readyz" 120 curl -fsS --cacert "${work}/ca.crt" \
  -H "Authorization: Bearer ${admin_token}" "https://127.0.0.1:${apiserver_port}/readyz"
t2=$(date +%s.%N)
log "kube-apiserver ready on 127.0.0.1:${apiserver_port} after $(python3 -c "print(round(${t2}-${t1},1))")s"

"${kubectl[@]}" get ns
"${kubectl[@]}" auth whoami
"${kubectl[@]}" version
log "OK"
