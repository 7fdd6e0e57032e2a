# One image for every Vitrina process: `vitrina serve catalog`, `vitrina router`, `vitrina migrate`.
# Multi-stage: cargo-chef caches the dependency build in its own layer, so a source change
# rebuilds only Vitrina's crates.
FROM lukemathwalker/cargo-chef:latest-rust-1.95-bookworm AS chef
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
# The `production` profile (Cargo.toml): the release profile with fat LTO, as measured in
# bench/results/report.md.
RUN cargo chef cook --profile production --locked --recipe-path recipe.json
COPY . .
RUN cargo build --profile production --locked --bin vitrina

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /app vitrina
WORKDIR /app
COPY --from=builder /app/target/production/vitrina /usr/local/bin/vitrina
COPY router/router.yaml /app/router/router.yaml
COPY supergraph.graphql /app/supergraph.graphql
ENV BIND_HOST=0.0.0.0 \
    DATA_DIR=/app/data \
    ROUTER_CONFIG_FILE_PATH=/app/router/router.yaml \
    SUPERGRAPH_FILE=/app/supergraph.graphql
RUN mkdir -p /app/data && chown vitrina /app/data
USER vitrina
ENTRYPOINT ["vitrina"]
