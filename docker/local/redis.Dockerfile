# Redis (Debian 12's, 7.0) standing in for the official redis image on a machine without a
# registry: `redis-server ARGS...` as the redis user, data in /data. scripts/cluster builds it.
ARG BASE=localhost/mcp-local/debian:bookworm
FROM ${BASE}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
VOLUME /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
