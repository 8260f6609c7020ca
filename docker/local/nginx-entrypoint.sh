#!/bin/sh
# The part of the official nginx image's entrypoint that docker/compose*.yaml relies on.
set -eu
if [ -n "${NGINX_ENTRYPOINT_LOCAL_RESOLVERS:-}" ]; then
    NGINX_LOCAL_RESOLVERS=$(awk 'BEGIN{ORS=" "} $1=="nameserver" {if ($2 ~ ":") {print "["$2"]"} else {print $2}}' /etc/resolv.conf)
    export NGINX_LOCAL_RESOLVERS="${NGINX_LOCAL_RESOLVERS% }"
fi
templates=/etc/nginx/templates
output=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
if [ -d "$templates" ]; then
    # Only the variables set in the environment, so nginx's own $variables stay as they are.
    defined=$(printf '${%s} ' $(env | cut -d= -f1))
    for template in "$templates"/*.template; do
        [ -f "$template" ] || continue
        envsubst "$defined" <"$template" >"$output/$(basename "$template" .template)"
    done
fi
exec "$@"
