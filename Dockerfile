# syntax=docker/dockerfile:1
# The a2o container image: `a2o serve` with the Anthropic front on 9998 and the OpenAI front on
# 9999. Settings are the environment variables listed in .env.example.
#
#   docker build -t a2o .
#   docker run --rm -p 9998:9998 -p 9999:9999 --env-file .env a2o
#
# tests/deploy_files.rs checks this file against the binary's real flags, defaults and env vars.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep downloaded crates and compiled dependencies between builds, so an edit in
# src/ recompiles only a2o (they need BuildKit, the default builder since Docker 23). The binary
# is copied out in the same step because the target cache is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin a2o \
    && cp target/release/a2o /usr/local/bin/a2o

FROM debian:bookworm-slim
# busybox (0.8 MB, needs only libc) brings the `wget` the health check uses: a real HTTP check
# that fails on a refused connection or a non-2xx status. curl would add about 10 MB of
# libraries, and a bare TCP connect would not look at the answer. No ca-certificates: a2o is
# built with rustls and the bundled Mozilla (webpki) roots; it also trusts the system store when
# there is one, so a derived image can add a company CA with ca-certificates.
RUN apt-get update \
    && apt-get install -y --no-install-recommends busybox \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin a2o
COPY --from=build /usr/local/bin/a2o /usr/local/bin/a2o
# A numeric user lets Kubernetes verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
# `a2o serve` also reads a .env from its working directory; none is baked into the image.
WORKDIR /app
# Inside a container a2o must listen on all interfaces to be reachable through published ports.
ENV HOST=0.0.0.0
EXPOSE 9998 9999
# No `-T`: Debian bookworm's busybox 1.35 wget crashes on it. Docker's --timeout ends a hung
# check instead. A different PORT (from --env-file or -e) is followed.
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
    CMD busybox wget -q -O /dev/null "http://127.0.0.1:${PORT:-9998}/health" || exit 1
ENTRYPOINT ["a2o"]
CMD ["serve"]
