# syntax=docker/dockerfile:1
# One image for every role: `udaconnect <role>` (person-api, location-api, location-consumer,
# connection-api, web). Without arguments it runs the whole product in one process on embedded
# storage in /data. See docs/deployment.md.

FROM rust:1.95-bookworm AS builder

# The rdkafka crate compiles librdkafka from source. The rust image carries these tools today;
# naming them keeps the build from depending on that. DL3008 (pin versions) is ignored: the tag
# pins the Debian release, and exact package versions leave its mirrors at each point release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ gcc make perl python3 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# Cache mounts keep the registry and the target directory between builds; the binary is copied
# out of the target cache, which is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p udaconnect \
 && install -D -m 0755 target/release/udaconnect /out/udaconnect

FROM debian:bookworm-slim AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="udaconnect" \
      org.opencontainers.image.description="UdaConnect: who met whom at a conference, from attendees' location pings" \
      org.opencontainers.image.source="https://github.com/udaconnect/udaconnect" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# A fixed numeric id, so Kubernetes can check runAsNonRoot without a user database.
RUN groupadd --system --gid 10001 udaconnect \
 && useradd --system --uid 10001 --gid udaconnect --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin udaconnect \
 && install -d -o udaconnect -g udaconnect -m 0750 /data

COPY --from=builder /out/udaconnect /usr/local/bin/udaconnect

USER 10001:10001
WORKDIR /data
ENV UDACONNECT_LOG_FORMAT=json

# 30000 web page and all-in-one API (serve, web), 30002 person-api, 30003 connection-api,
# 8080 location-api, location-consumer and mailer HTTP, 5005 location-api gRPC.
EXPOSE 30000 30002 30003 8080 5005

ENTRYPOINT ["udaconnect"]
CMD ["serve", "--listen", "0.0.0.0:30000", "--data-dir", "/data"]
