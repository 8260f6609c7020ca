# nginx (Debian 12's, 1.22) standing in for the official nginx image on a machine without a
# registry, with the same start: /docker-entrypoint.d/*.envsh sourced, then
# /etc/nginx/templates/*.template through envsubst into NGINX_ENVSUBST_OUTPUT_DIR.
# scripts/cluster builds it.
ARG BASE=localhost/mcp-local/debian:bookworm
FROM ${BASE}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light gettext-base \
    && rm -rf /var/lib/apt/lists/* \
    && rm -f /etc/nginx/sites-enabled/default && mkdir -p /docker-entrypoint.d
COPY nginx-entrypoint.sh /docker-entrypoint.sh
EXPOSE 80
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["nginx", "-g", "daemon off;"]
