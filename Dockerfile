# syntax=docker/dockerfile:1
# Build stage: compile the release binary.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY migration ./migration
COPY src ./src
COPY assets ./assets
COPY config ./config
COPY seed ./seed
COPY tests ./tests
COPY benches ./benches
RUN cargo build --release --locked --bin dispensary

# Runtime stage: a slim image running as an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --create-home dispensary
WORKDIR /app
COPY --from=build /src/target/release/dispensary /usr/local/bin/dispensary
USER dispensary
ENV APP_ADDR=0.0.0.0:8080 \
    DATABASE_URL=sqlite://data/dispensary.db?mode=rwc \
    LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080 && printf "GET /readyz HTTP/1.0\r\n\r\n" >&3 && head -n1 <&3 | grep -q " 200 "'
ENTRYPOINT ["dispensary"]
CMD ["serve"]
