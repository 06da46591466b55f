# syntax=docker/dockerfile:1
#
# Self-contained build of both services into minimal images.
#
#   docker build --target mock-camber -t mock-camber:local .
#   docker build --target api         -t mock-camber-api:local .
#
# or simply `docker compose up --build` (docker-compose.yml names both targets).
#
# The binaries are linked statically against glibc (crt-static), so the final
# images are FROM scratch: no shell, no libc, nothing but the binary and an
# empty /data owned by the unprivileged user the service runs as. TLS roots
# for https:// Camber endpoints are compiled into the api (webpki-roots).
# Container healthchecks use the binaries' own `healthcheck` subcommand, since
# there is no curl in the image.

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The target triple is the builder's own (x86_64 or aarch64), so the same
# Dockerfile works on Intel and ARM hosts.
# The cache mounts keep the registry and compiled dependencies between builds
# (BuildKit, or podman/buildah); the binaries are copied out of the cached
# target directory within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eux; \
    target="$(rustc -vV | sed -n 's/^host: //p')"; \
    RUSTFLAGS="-C target-feature=+crt-static" \
      cargo build --release --locked --target "$target" -p mock-camber -p api; \
    mkdir -p /out/data; \
    cp "target/$target/release/mock-camber" "target/$target/release/api" /out/; \
    chown 65532:65532 /out/data

# The same layout as Dockerfile.prebuilt (which packages binaries built on the
# host): /usr/local/bin/<service>, data under /data, uid 65532.
FROM scratch AS mock-camber
COPY --from=builder /out/mock-camber /usr/local/bin/mock-camber
COPY --from=builder --chown=65532:65532 /out/data /data
USER 65532:65532
ENV MOCK_CAMBER_HOST=0.0.0.0 \
    MOCK_CAMBER_PORT=9000 \
    MOCK_CAMBER_DB=/data/mock-camber.db \
    RUST_LOG=info
EXPOSE 9000
VOLUME ["/data"]
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=6 \
    CMD ["/usr/local/bin/mock-camber", "healthcheck", "--url", "http://127.0.0.1:9000/readyz"]
ENTRYPOINT ["/usr/local/bin/mock-camber"]

FROM scratch AS api
COPY --from=builder /out/api /usr/local/bin/api
COPY --from=builder --chown=65532:65532 /out/data /data
USER 65532:65532
ENV API_HOST=0.0.0.0 \
    API_PORT=8000 \
    DATABASE_PATH=/data/api.db \
    ARTIFACT_DIR=/data/artifacts \
    RUST_LOG=info
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=6 \
    CMD ["/usr/local/bin/api", "healthcheck", "--url", "http://127.0.0.1:8000/readyz"]
ENTRYPOINT ["/usr/local/bin/api"]
