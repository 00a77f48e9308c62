#!/usr/bin/env bash
# Installs the OWASP Core Rule Set into DEST: crs-setup.conf, rules/, LICENSE.
#
# Every installed file is checked against docker/crs-v$CRS_VERSION.sha256, and rules/ may hold
# nothing the manifest does not name (the wrapper loads rules/*.conf by glob). The files are
# pinned rather than the tarball because GitHub generates tag archives on the fly and does not
# promise their bytes stay the same; the files inside do. Set CRS_TARBALL_SHA256 to also pin
# the archive. A failed check fails the build: nothing is installed unverified.
#
# Usage: docker/fetch-crs.sh DEST
#   CRS_VERSION       release to install (default 4.28.0; needs its manifest next to this file)
#   CRS_SOURCE_DIR    an already extracted release to install from instead of downloading
#   CRS_TARBALL_SHA256  optional sha256 of the downloaded archive
set -euo pipefail

fail() {
    echo "fetch-crs: $*" >&2
    exit 1
}

[ $# -eq 1 ] || fail "usage: $0 DEST"
dest=$1
CRS_VERSION=${CRS_VERSION:-4.28.0}
manifest="$(cd "$(dirname "$0")" && pwd)/crs-v$CRS_VERSION.sha256"
[ -s "$manifest" ] || fail "no checksum manifest $manifest for CRS $CRS_VERSION"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -n "${CRS_SOURCE_DIR:-}" ]; then
    src=$CRS_SOURCE_DIR
else
    url="https://github.com/coreruleset/coreruleset/archive/refs/tags/v$CRS_VERSION.tar.gz"
    curl -fsSL --retry 3 -o "$tmp/crs.tar.gz" "$url" || fail "cannot download $url"
    if [ -n "${CRS_TARBALL_SHA256:-}" ]; then
        echo "$CRS_TARBALL_SHA256  $tmp/crs.tar.gz" | sha256sum --strict -c - >/dev/null \
            || fail "$url does not match CRS_TARBALL_SHA256"
    fi
    tar -xzf "$tmp/crs.tar.gz" -C "$tmp"
    src="$tmp/coreruleset-$CRS_VERSION"
fi
[ -d "$src/rules" ] || fail "$src has no rules/ directory"

(cd "$src" && sha256sum --quiet --strict -c "$manifest") \
    || fail "CRS $CRS_VERSION files in $src do not match $manifest"
unlisted=$(cd "$src" && find rules -type f | LC_ALL=C sort \
    | LC_ALL=C comm -23 - <(awk '{print $2}' "$manifest" | LC_ALL=C sort))
[ -z "$unlisted" ] || fail "files in $src/rules not in the manifest: $unlisted"

mkdir -p "$dest/rules"
cp "$src/LICENSE" "$dest/LICENSE"
cp "$src/crs-setup.conf.example" "$dest/crs-setup.conf"
awk '$2 ~ /^rules\// {print $2}' "$manifest" | while read -r f; do
    cp "$src/$f" "$dest/$f"
done
echo "fetch-crs: CRS $CRS_VERSION verified and installed in $dest" >&2
