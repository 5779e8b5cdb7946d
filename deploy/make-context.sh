#!/usr/bin/env bash
# Fills a Docker build context for deploy/Dockerfile (FROM scratch) with a kvd binary
# and everything it needs at run time, so `docker build` pulls no base image:
#
#   <context>/Dockerfile                  a copy of deploy/Dockerfile
#   <context>/rootfs/usr/local/bin/kvd    the binary (dynamically linked against glibc)
#   <context>/rootfs/<path of each library `ldd` lists>, the dynamic loader included
#   <context>/rootfs/<libdir>/libnss_{files,dns}.so.2   loaded by glibc at run time
#       (dlopen, so ldd does not list them) to resolve host names: kvd resolves
#       --cluster-seeds through getaddrinfo (tokio lookup_host, hyper's resolver)
#   <context>/rootfs/etc/nsswitch.conf    "hosts: files dns" (Docker mounts /etc/hosts
#       and /etc/resolv.conf, which points at its DNS for the service names)
#   <context>/rootfs/etc/{passwd,group}   the user kvd runs as (nobody, 65534)
#   <context>/rootfs/tmp, <context>/data  empty directories
#
# Usage: deploy/make-context.sh [KVD_BINARY] [CONTEXT_DIR]
#   defaults: target/release/kvd if it exists, else target/debug/kvd;
#             target/docker-context (replaced).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-}
if [[ -z "$bin" ]]; then
  bin="$root/target/release/kvd"
  [[ -x "$bin" ]] || bin="$root/target/debug/kvd"
fi
ctx=${2:-$root/target/docker-context}
[[ -x "$bin" ]] || { echo "make-context: no kvd binary at $bin (cargo build --workspace --bins)" >&2; exit 1; }
command -v ldd >/dev/null || { echo "make-context: ldd not found (apt-get install libc-bin)" >&2; exit 1; }

rm -rf "$ctx"
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc" "$ctx/rootfs/tmp" "$ctx/data"
chmod 1777 "$ctx/rootfs/tmp"
cp "$root/deploy/Dockerfile" "$ctx/Dockerfile"
cp "$bin" "$ctx/rootfs/usr/local/bin/kvd"

# copy_lib PATH: the file PATH points at, under the same path in the image.
copy_lib() {
  mkdir -p "$ctx/rootfs$(dirname "$1")"
  cp -L "$1" "$ctx/rootfs$1"
}
# `ldd` prints "libx.so => /path (addr)" for libraries and "/lib64/ld-linux... (addr)"
# for the loader; a statically linked binary prints "not a dynamic executable".
libs=$(ldd "$bin" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' || true)
libc=""
for lib in $libs; do
  copy_lib "$lib"
  [[ "$(basename "$lib")" == libc.so.* ]] && libc=$lib
done
if [[ -n "$libc" ]]; then
  libdir=$(dirname "$libc")
  for nss in libnss_files.so.2 libnss_dns.so.2 libresolv.so.2; do
    if [[ -e "$libdir/$nss" ]]; then
      copy_lib "$libdir/$nss"
    else
      echo "make-context: warning: $libdir/$nss not found; host names may not resolve" >&2
    fi
  done
else
  echo "make-context: $bin links no libc dynamically (static build): only IP addresses" \
    "resolve unless it carries its own resolver" >&2
fi

printf 'hosts: files dns\n' >"$ctx/rootfs/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/nonexistent\nnobody:x:65534:65534:nobody:/nonexistent:/nonexistent\n' \
  >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ctx/rootfs/etc/group"
echo "make-context: $ctx ($(du -sh "$ctx" | cut -f1)) from $bin"
