# syntax=docker/dockerfile:1
# trendcast as a container: the engine binary, ONNX Runtime's shared library and the shipped model,
# run as a non-root user (uid 10001). Not built in CI (these machines reach no container registry); checked by
# hadolint (tests/deploy.rs). Build and run:
#   docker build -t trendcast .
#   docker run --rm -e TRENDCAST_KAFKA__BROKERS=kafka:9092 -p 9464:9464 -p 8080:8080 trendcast

# 1. the engine (librdkafka is built from the crate's sources, with the image's OpenSSL; the
#    OpenAPI document embeds schemas/ at compile time)
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
COPY benches ./benches
COPY schemas ./schemas
RUN cargo build --release --locked --bin trendcast

# 2. ONNX Runtime's library, from the same PyPI wheel the tests use (scripts/requirements-runtime.txt)
FROM python:3.12-slim-bookworm AS onnxruntime
RUN pip install --no-cache-dir onnxruntime==1.31.1 \
 && cp "$(python -c 'import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))')/capi/libonnxruntime.so.1.31.1" /libonnxruntime.so.1.31.1

# 3. the runtime: glibc, libstdc++ (ONNX Runtime), OpenSSL and CA certificates (TLS and SASL to
#    the brokers), curl (healthcheck)
FROM debian:bookworm-slim
# Unpinned on purpose: bookworm's point releases carry the security fixes for these.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 libstdc++6 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/trendcast --create-home trendcast
COPY --from=build /src/target/release/trendcast /opt/trendcast/bin/trendcast
COPY --from=onnxruntime /libonnxruntime.so.1.31.1 /opt/trendcast/lib/libonnxruntime.so.1.31.1
COPY models/trendcast-demand /opt/trendcast/models/trendcast-demand
COPY deploy/trendcast.toml /etc/trendcast/trendcast.toml
# Inside a container the endpoints listen on every interface; the file keeps loopback for hosts.
ENV TRENDCAST_TELEMETRY__METRICS_LISTEN=0.0.0.0:9464 \
    TRENDCAST_API__LISTEN=0.0.0.0:8080 \
    RUST_LOG=info
USER 10001
WORKDIR /var/lib/trendcast
EXPOSE 8080 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9464/healthz"]
ENTRYPOINT ["/opt/trendcast/bin/trendcast"]
CMD ["run", "--config", "/etc/trendcast/trendcast.toml"]
