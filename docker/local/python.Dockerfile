# Python (Debian 12's, 3.11) standing in for the official python image on a machine without a
# registry: `python` and `pip` from a virtual environment first on the PATH, so `pip install`
# works as it does there. scripts/cluster builds it, with the host's extra certificate
# authorities (/usr/local/share/ca-certificates) bind-mounted at /host/ca-certificates: where
# HTTPS leaves the machine through a proxy that signs with its own CA, pip trusts what the host
# trusts.
ARG BASE=localhost/mcp-local/debian:bookworm
FROM ${BASE}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/python \
    && if [ -d /host/ca-certificates ]; then cp /host/ca-certificates/*.crt /usr/local/share/ca-certificates/ 2>/dev/null || true; fi \
    && update-ca-certificates >/dev/null
ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
