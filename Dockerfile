# syntax=docker/dockerfile:1
# rollout-guard image: the static-ish Rust binary on distroless, running as UID 65532.
# Build: docker build -t <registry>/rollout-guard:<tag> .

FROM rust:1-bookworm AS build
WORKDIR /src
# Manifests first: the dependency layer is reused while only src/ changes.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
# Cache mounts keep the registry and target dir between builds (BuildKit); the binary is copied
# out because a cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin rollout-guard \
    && cp target/release/rollout-guard /rollout-guard

# glibc and libgcc (ring's assembly needs nothing more), CA certificates, no shell, no package
# manager; the :nonroot tag already runs as 65532, USER repeats it for runAsNonRoot checks.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /rollout-guard /rollout-guard
USER 65532:65532
# 8443: HTTPS admission (/validate, /mutate; the chart moves it to 10250 with --addr); 8080:
# plain HTTP admin (/livez, /readyz, /metrics).
EXPOSE 8443 8080
ENTRYPOINT ["/rollout-guard"]
CMD ["serve"]
