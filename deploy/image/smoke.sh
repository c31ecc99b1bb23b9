#!/usr/bin/env bash
# Smoke test of the container image (CI runs it): builds it with build.sh, starts it with podman
# as its own non-root user on a read-only root file system, and checks that it answers
# SubjectAccessReviews over mutual TLS as `scopegate check` on the host answers the same bodies.
#
# Needs root (podman as root) and installs podman and runc with apt-get when missing.
# The podman flags below are what a container needs on a minimal machine, and are harmless
# elsewhere:
#   --runtime runc    crun refuses a host with cgroup v1 and v2 controllers mounted side by side
#                     ("hybrid" mode); runc runs there and everywhere else.
#   --ulimit ...      podman raises the open-files and process limits by default, which needs
#                     CAP_SYS_RESOURCE; limits at or below this shell's are always allowed
#                     (open files: up to 16384, above --max-connections plus 256).
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { echo "smoke.sh: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >&2 || { apt-get update -q >&2 && apt-get install -y -q "${missing[@]}" >&2; }
fi
for tool in curl jq python3; do
  command -v "$tool" >/dev/null || fail "$tool is needed"
done

start=$(date +%s)
image=$(deploy/image/build.sh)
say "image $image built in $(($(date +%s) - start)) s"
# The host's own build of the same sources answers the same bodies offline: the oracle.
triple=$(rustc -vV | sed -n 's/^host: //p')
host_scopegate=$(cargo metadata --format-version 1 --no-deps --locked | jq -r .target_directory)/$triple/release/scopegate

nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] || [ "$nofile" -gt 16384 ] && nofile=16384
run_flags=(--runtime runc --ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096)
name=scopegate-smoke-$$
work=$(mktemp -d)
cleanup() {
  podman rm -f -t 2 "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# What the image declares.
user=$(podman image inspect --format '{{.Config.User}}' "$image")
[ "$user" = 65532:65532 ] || fail "image user is '$user', expected 65532:65532"
entrypoint=$(podman image inspect --format '{{json .Config.Entrypoint}}' "$image")
[ "$entrypoint" = '["/usr/local/bin/scopegate"]' ] || fail "image entrypoint is $entrypoint"

version=$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)
label=$(podman image inspect --format '{{index .Config.Labels "org.opencontainers.image.version"}}' "$image")
[ "$label" = "$version" ] || fail "image version label is '$label', Cargo.toml says $version"
# The Dockerfile labels its image with the same version.
grep -q "org.opencontainers.image.version=\"$version\"" Dockerfile ||
  fail "the Dockerfile's org.opencontainers.image.version is not $version (Cargo.toml)"

# Certificates, made by the image itself as its own user into a directory that user owns.
mkdir "$work/certs"
chown 65532:65532 "$work/certs"
podman run --rm "${run_flags[@]}" --read-only --network none -v "$work/certs:/out" \
  "$image" certs --out-dir /out --host 127.0.0.1 >&2 || fail "scopegate certs in the image"
for f in ca.crt server.crt server.key client.crt client.key; do
  [ -s "$work/certs/$f" ] || fail "certs wrote no $f"
done

# The sync subcommand reads the example sync config with the workload identity variables the
# webhook injects (`--check` calls nothing), and the system roots it would trust are in the image.
check=$(podman run --rm "${run_flags[@]}" --read-only --network none \
  -v "$PWD/deploy/sync.yaml:/etc/scopegate/sync.yaml:ro" \
  -e AZURE_TENANT_ID=72f988bf-86f1-41af-91ab-2d7cd011db47 -e AZURE_CLIENT_ID=9c1c1a6e-0b7e-4b8e-9f1e-5a0f0c1d2e3f \
  -e AZURE_FEDERATED_TOKEN_FILE=/var/run/secrets/azure/tokens/azure-identity-token \
  "$image" sync --check --config /etc/scopegate/sync.yaml) || fail "scopegate sync --check in the image: $check"
grep -q "workload identity" <<<"$check" || fail "sync --check printed: $check"

# Two free loopback ports for the published webhook and admin ports.
read -r webhook_port admin_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')

# The policies and config of the repository, as in README.md; certificates from above.
podman run -d --name "$name" "${run_flags[@]}" \
  --read-only --cap-drop all --security-opt no-new-privileges \
  -p "127.0.0.1:$webhook_port:8443" -p "127.0.0.1:$admin_port:9090" \
  -v "$PWD/deploy/scopegate.yaml:/etc/scopegate/scopegate.yaml:ro" \
  -v "$PWD/policies:/etc/scopegate/policies:ro" \
  -v "$work/certs:/etc/scopegate/certs:ro" \
  --workdir /etc/scopegate \
  "$image" serve --config /etc/scopegate/scopegate.yaml \
  --listen 0.0.0.0:8443 --admin-listen 0.0.0.0:9090 \
  --tls-cert-file /etc/scopegate/certs/server.crt \
  --tls-private-key-file /etc/scopegate/certs/server.key \
  --client-ca-file /etc/scopegate/certs/ca.crt \
  --allowed-client-names kube-apiserver >/dev/null || fail "podman run"

ready=
for _ in $(seq 1 60); do
  if curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null; then ready=1; break; fi
  [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] || break
  sleep 0.5
done
if [ -z "$ready" ]; then
  podman logs "$name" >&2 || true
  fail "the container did not become ready on 127.0.0.1:$admin_port/readyz"
fi
say "ready: $(curl -s "http://127.0.0.1:$admin_port/readyz")"

# The running process: not root, root file system mounted read-only.
pid=$(podman inspect --format '{{.State.Pid}}' "$name")
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
[ "$uids" = "65532 65532 65532 65532" ] || fail "the server runs with uids '$uids'"
root_options=$(awk '$5 == "/" {print $6}' "/proc/$pid/mountinfo")
case ",$root_options," in
  *,ro,*) ;;
  *) fail "the container's / is mounted '$root_options', not read-only" ;;
esac
[ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$name")" = true ] || fail "ReadonlyRootfs is not set"

# Every request fixture: the container's answer over mutual TLS equals the host's offline one.
allowed=0 denied=0
for body in tests/fixtures/requests/*.json; do
  # Exit status 0 allowed, 1 denied, 2 no opinion, 3 error.
  code=0
  expected=$("$host_scopegate" check --config deploy/scopegate.yaml -f "$body") || code=$?
  [ "$code" -le 2 ] || fail "scopegate check on the host for $body exited $code"
  expected=$(jq -c .status <<<"$expected")
  answer=$(curl -sS --fail-with-body --cacert "$work/certs/ca.crt" \
    --cert "$work/certs/client.crt" --key "$work/certs/client.key" \
    -H 'Content-Type: application/json' --data "@$body" \
    "https://127.0.0.1:$webhook_port/authorize") || fail "POST $body: $answer"
  actual=$(jq -c .status <<<"$answer")
  [ "$actual" = "$expected" ] || fail "$body: container answered $actual, scopegate check says $expected"
  [ "$(jq .allowed <<<"$actual")" = true ] && allowed=$((allowed + 1))
  [ "$(jq .denied <<<"$actual")" = true ] && denied=$((denied + 1))
  say "$body: $actual"
done
[ "$allowed" -ge 1 ] || fail "no fixture was allowed"
[ "$denied" -ge 1 ] || fail "no fixture was denied"
# The deny assignment of README.md, with its reason.
jq -e '.status.denied == true and (.status.reason | contains("deny assignment"))' >/dev/null < <(
  curl -sS --cacert "$work/certs/ca.crt" --cert "$work/certs/client.crt" --key "$work/certs/client.key" \
    -H 'Content-Type: application/json' --data @tests/fixtures/requests/alice-get-secret.json \
    "https://127.0.0.1:$webhook_port/authorize") || fail "alice-get-secret.json is not denied by a deny assignment"

# Mutual TLS is enforced: no client certificate, no answer.
if curl -sf -o /dev/null --cacert "$work/certs/ca.crt" -H 'Content-Type: application/json' \
  --data @tests/fixtures/requests/alice-get-secret.json "https://127.0.0.1:$webhook_port/authorize"; then
  fail "a request without a client certificate was answered"
fi

podman stop -t 5 "$name" >/dev/null || fail "podman stop"
podman rm "$name" >/dev/null || fail "podman rm"
say "ok: $allowed allowed, $denied denied, non-root, read-only root, in $(($(date +%s) - start)) s"
