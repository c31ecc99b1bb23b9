#!/usr/bin/env bash
# Builds the scopegate container image without pulling any base image: a statically linked
# binary built here, committed with `buildah from scratch`. The result is the image the
# Dockerfile makes (same layout, user, entry point, ports and labels).
#
#   deploy/image/build.sh            -> ghcr.io/scopegate/scopegate:<version in Cargo.toml>
#
# Environment:
#   SCOPEGATE_IMAGE   image name and tag to commit (default above)
#
# The binary is built with `--target <host triple>`, so it lands in target/<triple>/release and
# the static-CRT flags never touch (or invalidate) the ordinary target/release build. Installs
# buildah with apt-get when it is missing (needs root). Prints the image name on stdout; the
# progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { echo "build.sh: $*" >&2; }

version=$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)
[ -n "$version" ] || { say "no package version in Cargo.toml"; exit 1; }
image=${SCOPEGATE_IMAGE:-ghcr.io/scopegate/scopegate:$version}

if ! command -v buildah >/dev/null; then
  say "installing buildah"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q buildah >&2 || { apt-get update -q >&2 && apt-get install -y -q buildah >&2; }
fi

# The static binary. crt-static links glibc into it; glibc >= 2.34 has the files and DNS host
# lookups built in, so it resolves names (/etc/hosts, /etc/resolv.conf from the runtime) with
# nothing else in the image.
triple=$(rustc -vV | sed -n 's/^host: //p')
say "cargo build --release --locked --target $triple (static CRT)"
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target "$triple" >&2
target_dir=$(cargo metadata --format-version 1 --no-deps --locked | jq -r .target_directory)
binary=$target_dir/$triple/release/scopegate
if readelf -l "$binary" | grep -q 'INTERP'; then
  say "$binary is dynamically linked (has a program interpreter): not usable in an empty image"
  exit 1
fi

# The root file system: the binary, the CA bundle for outbound TLS, and the user names.
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
install -D -m 0755 "$binary" "$rootfs/usr/local/bin/scopegate"
# Without the line tables (71 MB -> 17 MB); the symbols stay, so a backtrace names functions.
objcopy --strip-debug "$rootfs/usr/local/bin/scopegate"
ca_bundle=/etc/ssl/certs/ca-certificates.crt
if [ -f "$ca_bundle" ]; then
  install -D -m 0644 "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
else
  say "WARNING: no $ca_bundle on this machine; the image has no CA bundle for outbound TLS"
fi
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
container=$(buildah from scratch)
cleanup() { buildah rm "$container" >/dev/null 2>&1 || true; rm -rf "$rootfs"; }
trap cleanup EXIT
buildah copy --chown 0:0 "$container" "$rootfs/" / >/dev/null
buildah config \
  --user 65532:65532 \
  --entrypoint '["/usr/local/bin/scopegate"]' \
  --cmd '["--help"]' \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --port 8443/tcp --port 9090/tcp \
  --label org.opencontainers.image.title=scopegate \
  --label "org.opencontainers.image.description=Kubernetes authorization webhook: Azure RBAC and Kubernetes RBAC decisions for SubjectAccessReviews" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$revision" \
  "$container"
previous=$(buildah images --quiet --noheading "$image" 2>/dev/null || true)
buildah commit --quiet "$container" "$image" >/dev/null
# The image this name pointed at before, now untagged: removed unless something still uses it.
if [ -n "$previous" ] && [ "$previous" != "$(buildah images --quiet --noheading "$image")" ]; then
  buildah rmi "$previous" >/dev/null 2>&1 || true
fi
say "committed $image ($(du -h "$rootfs/usr/local/bin/scopegate" | cut -f1) binary)"
echo "$image"
