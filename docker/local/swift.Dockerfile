# The Swift build image for a machine without a registry: the Debian 12 base that
# scripts/cluster imports (debootstrap), the packages Swift and this package build with, and
# the host's toolchain and package mirror, bind-mounted at build time:
#   podman build -v /opt/swift:/host/swift:ro -v /opt/swift-packages:/host/swift-packages:ro \
#       --build-arg BASE=localhost/mcp-local/debian:bookworm -f docker/local/swift.Dockerfile docker/local
# SwiftPM then resolves https://github.com/... from /opt/swift-packages, as on the host.
ARG BASE=localhost/mcp-local/debian:bookworm
FROM ${BASE}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        binutils gcc git libc6-dev libstdc++-12-dev libcurl4-openssl-dev libedit-dev libicu-dev \
        libncurses-dev libpython3-dev libsqlite3-dev libxml2-dev libz3-dev pkg-config tzdata \
        uuid-dev zlib1g-dev libhiredis-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN cp -a /host/swift /opt/swift && cp -a /host/swift-packages /opt/swift-packages \
    && git config --system url./opt/swift-packages/.insteadOf https://github.com/
ENV PATH=/opt/swift/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
