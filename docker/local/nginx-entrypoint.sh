#!/bin/sh
# The part of the official nginx image's entrypoint that docker/compose*.yaml relies on: source
# the executable /docker-entrypoint.d/*.envsh, then fill in /etc/nginx/templates/*.template
# with the environment's variables into NGINX_ENVSUBST_OUTPUT_DIR.
set -eu
for script in /docker-entrypoint.d/*.envsh; do
    [ -x "$script" ] && . "$script"
done
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
