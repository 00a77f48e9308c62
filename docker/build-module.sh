#!/usr/bin/env bash
# Builds the module for the container image and checks it with nginx -t: the steps the
# Dockerfile's builder stage runs, and CI runs outside Docker (scripts/test), so a build or a
# default configuration that the image would reject fails CI too.
#
# Usage: docker/build-module.sh [OUT_DIR]      (default target/image)
#   NGINX_VERSION  the nginx the module is built for. Default: the Dockerfile's
#                  `ARG NGINX_VERSION=` (the one place the version is written). When it is the
#                  version the nginx-src crate vendors, that source is used; otherwise nginx-src
#                  downloads and GPG-verifies that release (NGX_VERSION), which needs network.
#   CRS_DIR        an installed CRS (docker/fetch-crs.sh output). Default: installed into
#                  OUT_DIR from ../shared/crs/v$CRS_VERSION if present, else downloaded.
#
# Output: OUT_DIR/ngx_http_honeytrap_module.so, and OUT_DIR/check/, the image's configuration
# laid out under a scratch root, on which nginx -t ran twice: with the image's defaults, and
# with every sink configured by docker/40-honeytrap-config.sh as the compose stack does.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

fail() {
    echo "build-module: $*" >&2
    exit 1
}

out=${1:-target/image}
mkdir -p "$out"
out=$(cd "$out" && pwd)

image_version=$(sed -n 's/^ARG NGINX_VERSION=\([0-9][0-9.]*\)$/\1/p' Dockerfile)
NGINX_VERSION=${NGINX_VERSION:-$image_version}
[ -n "$NGINX_VERSION" ] || fail "no NGINX_VERSION and no ARG NGINX_VERSION= in Dockerfile"
# nginx-src is versioned <crate version>+<nginx version>.
vendored=$(awk '$0 == "name = \"nginx-src\"" { getline; print }' Cargo.lock \
    | sed -n 's/^version = "[^+"]*+\([0-9.]*\)"$/\1/p')
if [ "$NGINX_VERSION" = "$vendored" ]; then
    unset NGX_VERSION
else
    export NGX_VERSION=$NGINX_VERSION
    echo "build-module: nginx $NGINX_VERSION is not the vendored $vendored: downloading its source" >&2
fi

scripts/deps

log="$out/cargo-build.json"
cargo build --locked --release --lib --message-format=json-render-diagnostics >"$log"
# The cdylib and the nginx binary of this very build (nginx-sys reports its build directory).
module=$(grep '"reason":"compiler-artifact"' "$log" | grep -o '"[^"]*/libngx_http_honeytrap_module\.so"' \
    | tr -d '"' | tail -n 1)
objs=$(grep '"reason":"build-script-executed"' "$log" | grep '"package_id":"[^"]*nginx-sys' \
    | sed -n 's/.*"out_dir":"\([^"]*\)".*/\1/p' | tail -n 1)/objs
nginx="$objs/nginx"
[ -f "$module" ] || fail "module not found in cargo's output ($log)"
[ -x "$nginx" ] || fail "nginx binary not found at $nginx"
built=$("$nginx" -v 2>&1 | sed -n 's|^nginx version: nginx/||p')
[ "$built" = "$NGINX_VERSION" ] || fail "built against nginx $built, expected $NGINX_VERSION"
install -m 0644 "$module" "$out/ngx_http_honeytrap_module.so"

# The image's files under a scratch root, at the paths the Dockerfile puts them.
root="$out/check"
rm -rf "$root"
mkdir -p "$root/etc/nginx/modules" "$root/var/log/nginx/honeytrap" "$root/var/lib/honeytrap" \
    "$root/var/cache/nginx" "$root/usr/share/nginx/html" "$root/tmp"
cp "$out/ngx_http_honeytrap_module.so" "$root/etc/nginx/modules/"
cp nginx-conf/mime.types "$root/etc/nginx/mime.types"
cp docker/nginx.conf "$root/etc/nginx/nginx.conf"
cp -R docker/honeytrap "$root/etc/nginx/honeytrap"
cp -R rules/. "$root/etc/nginx/honeytrap/rules.d/"
cp -R nginx-conf/site/. "$root/usr/share/nginx/html/"
if [ -n "${CRS_DIR:-}" ]; then
    cp -R "$CRS_DIR" "$root/etc/nginx/honeytrap/crs"
else
    crs_version=$(sed -n 's/^ARG CRS_VERSION=\([0-9][0-9.]*\)$/\1/p' Dockerfile)
    shared="$repo/../shared/crs/v$crs_version"
    [ -d "$shared" ] && export CRS_SOURCE_DIR=$shared
    CRS_VERSION=$crs_version docker/fetch-crs.sh "$root/etc/nginx/honeytrap/crs"
fi
# Absolute paths of the image, moved under the scratch root.
relocate() {
    sed -i -E "s#(^|[[:space:]=])/(etc/nginx|var/log/nginx|var/lib/honeytrap|var/cache/nginx|usr/share/nginx|tmp)/#\1$root/\2/#g" "$@"
}
relocate "$root/etc/nginx/nginx.conf" "$root"/etc/nginx/honeytrap/*.conf

check() {
    echo "build-module: nginx -t ($1)" >&2
    "$nginx" -t -q -p "$root/etc/nginx/" -c "$root/etc/nginx/nginx.conf" \
        -e "$root/var/log/nginx/error.log" || fail "nginx -t failed ($1)"
}
check "image defaults"

# The start-up script as the compose stack runs it (nothing is contacted by nginx -t).
HONEYTRAP_CONF_DIR="$root/etc/nginx/honeytrap" HONEYTRAP_STATE_DIR="$root/var/lib/honeytrap" \
    HONEYTRAP_UPSTREAM=http://127.0.0.1:9 HONEYTRAP_SENSOR=ci-sensor \
    HONEYTRAP_ES_URL=http://127.0.0.1:9200 HONEYTRAP_ES_USER=honeytrap_writer \
    HONEYTRAP_ES_PASSWORD=not-a-real-password \
    HONEYTRAP_MISP_URL=http://127.0.0.1:8 HONEYTRAP_MISP_KEY=0000000000000000000000000000000000000000 \
    sh docker/40-honeytrap-config.sh >/dev/null
check "upstream, Elasticsearch and MISP configured"
echo "build-module: $out/ngx_http_honeytrap_module.so (nginx $NGINX_VERSION) passes nginx -t" >&2
