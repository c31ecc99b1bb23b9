# scopegate container image: a statically linked binary on an empty base.
#
#   podman build -t ghcr.io/scopegate/scopegate:0.1.0 .     (or docker build / buildah bud)
#
# deploy/image/build.sh makes the same image without pulling any base image (buildah from
# scratch with a binary built on the host).

ARG RUST_VERSION=1.95.0

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# crt-static links glibc statically (libc6-dev's static libraries are in the rust image);
# naming the target keeps build scripts and proc macros dynamic. glibc >= 2.34 resolves host
# names from /etc/hosts and DNS without loading NSS modules, so the binary needs no libraries.
RUN target="$(rustc -vV | sed -n 's/^host: //p')" \
 && RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target "$target" \
 && install -D -m 0755 "target/$target/release/scopegate" /rootfs/usr/local/bin/scopegate \
 && objcopy --strip-debug /rootfs/usr/local/bin/scopegate
# The non-root user by name (for tools that show it), and the CA bundle for outbound TLS.
RUN install -D -m 0644 /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' > /rootfs/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /rootfs/etc/group

# No shell, no package manager: the binary, the CA bundle and the user names only. Runs as
# 65532 and writes nothing, so it works with a read-only root file system.
FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# 8443: the webhook (HTTPS, mutual TLS); 9090: /livez, /readyz, /metrics (plain HTTP).
EXPOSE 8443 9090
ENTRYPOINT ["/usr/local/bin/scopegate"]
CMD ["--help"]
LABEL org.opencontainers.image.title="scopegate" \
      org.opencontainers.image.description="Kubernetes authorization webhook: Azure RBAC and Kubernetes RBAC decisions for SubjectAccessReviews" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
