#!/usr/bin/env bash
# build.sh: compiles gomem's JNI backend (gomem_jni.c) into the library jar's resources, one
# shared object per Linux platform, at io/gomem/os/native/<os>-<arch>/libgomem.so:
#
#   bash native/jni/build.sh OUTPUT_DIR JAVA_HOME
#
# The machine's own platform is built with gcc (required). Every other platform gomem supports is
# built when its cross compiler is on PATH (aarch64-linux-gnu-gcc for linux-aarch64,
# x86_64-linux-gnu-gcc for linux-x86_64) and skipped with one line otherwise: the jar then lacks
# that platform, and loading the JNI backend there fails with an error naming it. The Maven build
# (java/pom.xml) runs this in the compile phase.
set -euo pipefail
out="${1:?usage: build.sh OUTPUT_DIR JAVA_HOME}"
jdk="${2:?usage: build.sh OUTPUT_DIR JAVA_HOME}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/gomem_jni.c"
[ -f "$jdk/include/jni.h" ] || { echo "build.sh: no $jdk/include/jni.h: JAVA_HOME must be a JDK" >&2; exit 1; }
flags=(-std=c11 -D_GNU_SOURCE -O2 -fPIC -shared -Wall -Wextra -Werror -Wno-unused-parameter
       -I "$here/../include" -I "$jdk/include" -I "$jdk/include/linux")

host="$(uname -m)"
case "$host" in
  x86_64|amd64) host=x86_64 ;;
  aarch64|arm64) host=aarch64 ;;
esac

for arch in x86_64 aarch64; do
  if [ "$arch" = "$host" ]; then
    cc=gcc
  else
    cc="$arch-linux-gnu-gcc"
    if ! command -v "$cc" >/dev/null 2>&1; then
      echo "build.sh: linux-$arch skipped: no $cc on PATH (the jar will not run the JNI backend there)"
      continue
    fi
  fi
  dir="$out/io/gomem/os/native/linux-$arch"
  mkdir -p "$dir"
  if [ "$dir/libgomem.so" -nt "$src" ] && [ "$dir/libgomem.so" -nt "$here/../include/gomem_sys.h" ] \
      && [ "$dir/libgomem.so" -nt "${BASH_SOURCE[0]}" ]; then
    continue # up to date
  fi
  "$cc" "${flags[@]}" "$src" -o "$dir/libgomem.so"
  echo "build.sh: linux-$arch: $dir/libgomem.so ($cc)"
done
