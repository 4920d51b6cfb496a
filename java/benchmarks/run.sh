#!/usr/bin/env bash
# Runs the JMH benchmarks jar with any JMH arguments, e.g.
#   java/benchmarks/run.sh                                  # the full suite
#   java/benchmarks/run.sh -f 1 -wi 1 -i 1 -w 1s -r 1s -p size=16,256,4096 'MallocBench|JemallocBench'
# Build the jar first (JAVA_HOME = a JDK 25):
#   mvn -q -pl bindings,java install -DskipTests && mvn -q -pl java/benchmarks package -DskipTests
# See BENCHMARKS.md at the repository root.
#
# Sets GLIBC_TUNABLES so the forked JVMs (which inherit this environment) can dlopen jemalloc:
# libjemalloc.so.2 uses initial-exec TLS, and glibc only makes room for that in the static TLS
# block of a running process when the tunable is set at process start.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
jar="$here/target/benchmarks.jar"
if [[ ! -f "$jar" ]]; then
  echo "no $jar: build it with: mvn -q -pl bindings,java install -DskipTests && mvn -q -pl java/benchmarks package -DskipTests" >&2
  exit 1
fi
. "$(cd "$(dirname "$0")" && pwd)/jdk25.sh"
java_bin="$(jdk25)/bin/java"
export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.rtld.optional_static_tls=16384"
exec "$java_bin" -jar "$jar" "$@"
