#!/usr/bin/env bash
# build-images.sh: build a local JDK base image for gomem's container tests, offline.
#
#   bash docker/build-images.sh [IMAGE]
#
# IMAGE (default $GOMEM_DOCKER_BASE_IMAGE, else gomem-jre:25-local) is the base image the tests
# will run. It is built here only when it is a local image: $GOMEM_DOCKER_LOCAL_IMAGE (default
# gomem-jre:25-local, from $JAVA_HOME, a JDK 25 or newer) or gomem-jre:17-local (from
# $JAVA17_HOME, a JDK 17: gomem's JDK 17 part, on its JNI backend); any other name (e.g. a public
# JDK 25 image, for a user with a registry) is left to the tests, and nothing is built.
#
# A local image is `FROM scratch`: a jlink'ed JDK runtime (from the JDK above) at
# /opt/java/openjdk plus the machine's own glibc libraries that runtime needs (found with ldd).
# Nothing comes from any registry. There is no shell in it: run it with exec-form commands
# (`java ...`; PATH holds only the runtime's bin). The image is rebuilt only when its inputs (the
# JDK, the module list, the glibc, this script) changed: a label records their hash.
#
# Settings (environment): JAVA_HOME (a JDK 25 with jlink), JAVA17_HOME (a JDK 17 with jlink and
# its jmods, for gomem-jre:17-local), DOCKER_HOST (the engine; default: what
# `engine.sh env` prints), GOMEM_DOCKER_CONTEXT (build context dir, default docker/target/jre-image),
# GOMEM_JRE_MODULES (comma-separated modules to link).
set -euo pipefail

me="build-images.sh"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
local_image="${GOMEM_DOCKER_LOCAL_IMAGE:-gomem-jre:25-local}"
image="${1:-${GOMEM_DOCKER_BASE_IMAGE:-$local_image}}"
ctx="${GOMEM_DOCKER_CONTEXT:-$here/target/jre-image}"
modules="${GOMEM_JRE_MODULES:-java.base,java.logging,java.management,jdk.jfr,jdk.unsupported}"
cli=/usr/bin/docker
if [ -n "${GOMEM_DOCKER_SKIP_FILE:-}" ] && [ -f "$GOMEM_DOCKER_SKIP_FILE" ]; then
  exit 0 # engine.sh found no engine and said so: no image to build
fi
export DOCKER_HOST="${DOCKER_HOST:-$(bash "$here/engine.sh" env)}"
export DOCKER_BUILDKIT=0      # the classic builder: FROM scratch, no frontend image to fetch

say() { echo "$me: $*" >&2; }
die() { echo "$me: ERROR: $*" >&2; exit 1; }

jdk17_image="gomem-jre:17-local"
if [ "$image" = "$jdk17_image" ]; then
  jdk="${JAVA17_HOME:-}"; want=17; jdk_var=JAVA17_HOME
elif [ "$image" = "$local_image" ]; then
  jdk="${JAVA_HOME:-}"; want=25; jdk_var=JAVA_HOME
else
  say "base image is $image, not the local $local_image or $jdk17_image: nothing to build (the tests use $image as it is)"
  exit 0
fi

[ -x "$cli" ] || die "$cli (Debian's docker.io) is missing: run 'bash docker/engine.sh up' first"
"$cli" info --format '{{.ServerVersion}}' >/dev/null 2>&1 \
  || die "no Docker engine answers at $DOCKER_HOST: run 'bash docker/engine.sh up' first"
[ -n "$jdk" ] && [ -x "$jdk/bin/jlink" ] \
  || die "$jdk_var must point to a JDK $want with jlink (set $jdk_var to one) to build $image"
jver="$(sed -n 's/^JAVA_VERSION="\(.*\)"$/\1/p' "$jdk/release" 2>/dev/null || true)"
if [ "$want" = 17 ]; then
  case "$jver" in 17|17.*) ;; *) die "$jdk_var=$jdk is Java '$jver', need 17 for $image" ;; esac
else
  case "$jver" in 25*|2[6-9]*|[3-9][0-9]*) ;; *) die "$jdk_var=$jdk is Java '$jver', need 25 or newer" ;; esac
fi

key="$( { cat "$jdk/release"; echo "$modules"; ldd --version 2>&1 | head -n 1; \
          uname -m; cat "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-32)"
have="$("$cli" image inspect --format '{{index .Config.Labels "io.gomem.jre.key"}}' "$image" 2>/dev/null || true)"
if [ "$have" = "$key" ]; then
  say "$image is up to date (key $key); not rebuilding"
  exit 0
fi

start=$(date +%s)
say "building $image: jlink $modules from $jdk (Java $jver) into $ctx"
rm -rf "$ctx"
mkdir -p "$ctx/rootfs/opt/java" "$ctx/rootfs/tmp" "$ctx/rootfs/etc"
jre="$ctx/rootfs/opt/java/openjdk"
"$jdk/bin/jlink" --add-modules "$modules" --output "$jre" \
  --strip-debug --no-man-pages --no-header-files >/dev/null \
  || die "jlink failed"
chmod 1777 "$ctx/rootfs/tmp"
echo 'root:x:0:0:root:/root:/sbin/nologin' > "$ctx/rootfs/etc/passwd"
echo 'root:x:0:' > "$ctx/rootfs/etc/group"

# The shared libraries the runtime needs, from this machine, at the paths the loader looks in.
libs="$( { find "$jre/bin" -type f -perm -u+x; find "$jre/lib" -name '*.so'; } \
         | xargs ldd 2>/dev/null \
         | awk '/=> \// { print $3 } /^[[:space:]]*\/[^ ]*ld-linux/ { print $1 }' | sort -u)"
[ -n "$libs" ] || die "ldd found no libraries for the linked runtime"
# glibc loads these by name at run time (unwinding on thread exit, name lookups): take them too.
extra="$(ldconfig -p 2>/dev/null | awk '/(libgcc_s\.so\.1|libnss_files\.so\.2) \(libc6,x86-64\)/ { print $NF }' | sort -u || true)"
for lib in $libs $extra; do
  case "$lib" in "$jre"/*) continue ;; esac      # the runtime's own libraries are already there
  [ -e "$lib" ] || continue
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
say "libraries: $(for lib in $libs $extra; do case "$lib" in "$jre"/*) ;; *) printf '%s ' "${lib##*/}";; esac; done)"

cat > "$ctx/Dockerfile" <<EOF
# Generated by docker/build-images.sh: a JDK $jver runtime on this machine's glibc, nothing else.
FROM scratch
COPY rootfs/ /
ENV JAVA_HOME=/opt/java/openjdk PATH=/opt/java/openjdk/bin LANG=C.UTF-8
LABEL io.gomem.jre.key="$key" io.gomem.jre.java="$jver" io.gomem.jre.modules="$modules"
CMD ["java", "-version"]
EOF

"$cli" build --pull=false --network none -q -t "$image" "$ctx" >/dev/null || die "docker build failed"

# FROM scratch: the image must be our own single layer, with no parent from anywhere.
layers="$("$cli" image inspect --format '{{len .RootFS.Layers}}' "$image")"
[ "$layers" = 1 ] || die "$image has $layers layers; expected the one FROM scratch layer"
say "built $image ($(( $("$cli" image inspect --format '{{.Size}}' "$image") / 1048576 )) MB, 1 layer, FROM scratch) in $(( $(date +%s) - start ))s"
