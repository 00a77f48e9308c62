# syntax=docker/dockerfile:1
# ngx-honeytrap sensor: the official nginx image, the honeytrap module built for exactly its
# nginx, the OWASP CRS (checksum-verified) and a default honeypot configuration (docker/).
#
#   docker build -t ngx-honeytrap .
#   docker run -p 8080:8080 -p 8000:8000 -p 8888:8888 ngx-honeytrap
#
# NGINX_VERSION is the one nginx version: the runtime is nginx:${NGINX_VERSION}-${DEBIAN_RELEASE}
# and the module is built against that same nginx source with --with-compat (nginx loads a
# module only into the version it was built for). 1.28.3 is the nginx the nginx-src crate
# vendors, so the build needs no nginx download and CI builds the very same thing
# (docker/build-module.sh, run by scripts/test). Another version makes the builder download and
# GPG-verify that nginx release; tests/deploy.rs insists the two stay equal.
# The official stable images moved from Debian bookworm to trixie with nginx 1.28.1, so there is
# no 1.28.3 bookworm image: builder and runtime are both trixie (same glibc for the module).
ARG NGINX_VERSION=1.28.3
ARG DEBIAN_RELEASE=trixie
ARG RUST_VERSION=1.95.0
ARG CRS_VERSION=4.28.0

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
ARG NGINX_VERSION
ARG CRS_VERSION
# Optional extra pin of the CRS archive itself; every CRS file is pinned by
# docker/crs-v${CRS_VERSION}.sha256 regardless (see docker/fetch-crs.sh).
ARG CRS_TARBALL_SHA256=
WORKDIR /src
COPY . .
RUN CRS_VERSION=${CRS_VERSION} CRS_TARBALL_SHA256=${CRS_TARBALL_SHA256} docker/fetch-crs.sh /out/crs
RUN NGINX_VERSION=${NGINX_VERSION} CRS_DIR=/out/crs docker/build-module.sh /out

FROM nginx:${NGINX_VERSION}-${DEBIAN_RELEASE}
ARG NGINX_VERSION
LABEL org.opencontainers.image.title="ngx-honeytrap" \
      org.opencontainers.image.description="Web honeypot sensor inside nginx ${NGINX_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

# /etc/nginx/modules is a link to /usr/lib/nginx/modules in the official image.
COPY --from=build /out/ngx_http_honeytrap_module.so /usr/lib/nginx/modules/ngx_http_honeytrap_module.so
COPY --from=build /out/crs/ /etc/nginx/honeytrap/crs/
COPY docker/nginx.conf /etc/nginx/nginx.conf
COPY docker/honeytrap/ /etc/nginx/honeytrap/
COPY rules/ /etc/nginx/honeytrap/rules.d/
COPY nginx-conf/site/ /usr/share/nginx/html/
COPY --chmod=0755 docker/40-honeytrap-config.sh /docker-entrypoint.d/40-honeytrap-config.sh

# Only what nginx writes belongs to the nginx user; the module, CRS and rules stay root's.
RUN set -eu; \
    rm -f /etc/nginx/conf.d/default.conf; \
    mkdir -p /var/log/nginx/honeytrap /var/lib/honeytrap /var/cache/nginx; \
    chown -R nginx:nginx /var/log/nginx/honeytrap /var/lib/honeytrap /var/cache/nginx; \
    chown nginx:nginx /etc/nginx/honeytrap /etc/nginx/honeytrap/site.conf /etc/nginx/honeytrap/sinks.conf

USER nginx
# The module loads into this image's nginx and the default configuration is valid. nginx -t
# generates the installation secret: removed, so that no two sensors share one from the image.
# (-e stderr: fd 2 as is, rather than opening the /dev/stderr link as an unprivileged user.)
RUN set -eu; \
    test -f /etc/nginx/modules/ngx_http_honeytrap_module.so; \
    nginx -t -e stderr; \
    rm -f /var/lib/honeytrap/honeytrap.secret /var/log/nginx/honeytrap/events.ndjson

# Secret and spool survive restarts; events are kept for Filebeat or inspection.
VOLUME ["/var/lib/honeytrap", "/var/log/nginx/honeytrap"]
EXPOSE 8080 8000 8888
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8081/honeytrap/status || exit 1
