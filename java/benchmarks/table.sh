#!/usr/bin/env bash
# Runs one table of BENCHMARKS.md and prints it in Markdown, e.g.
#   java/benchmarks/table.sh pair        # allocate+free pairs, one thread
#   java/benchmarks/table.sh pair2t      # the same, two threads at once
#   java/benchmarks/table.sh batch       # 1000 allocations then 1000 frees, in order and random order
#   java/benchmarks/table.sh xthread     # allocated on one thread, freed on another
#   java/benchmarks/table.sh mix         # larson-like server mix, 2 and 4 threads
#   java/benchmarks/table.sh footprint   # the 256 MiB churn: resident memory after fill / free 90% / release
# JMH settings: JMH_OPTS (default "-f 1 -wi 3 -i 5 -w 1s -r 1s"); sizes: SIZES (comma-separated,
# default per table); more JMH arguments after the table name (e.g. -prof gc). The JMH JSON goes to
# java/benchmarks/target/results/TABLE.json. Build the jar first (see run.sh). Prints the load
# average before and after: record numbers only from a quiet machine (see BENCHMARKS.md).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/jdk25.sh"
here="$(cd "$(dirname "$0")" && pwd)"
table="${1:?usage: table.sh pair|pair2t|batch|xthread|mix|footprint [JMH args]}"
shift
read -r -a opts <<< "${JMH_OPTS:--f 1 -wi 3 -i 5 -w 1s -r 1s}"
pair_sizes=16,64,256,1024,4096,32768,262144
case "$table" in
  pair)    sizes="${SIZES:-$pair_sizes}"
           sel='GoHeapBench\.(raw|segment)$|MallocBench\.(malloc|mallocCritical)$|JemallocBench\.(jemalloc|jemallocCritical)$|UnsafeBench\.unsafe$|ArenaBench\.confined$|NettyBench\.(pooled|adaptive)$' ;;
  pair2t)  sizes="${SIZES:-$pair_sizes}"
           sel='GoHeapBench\.(raw|segment)2t$|MallocBench\.(malloc|mallocCritical)2t$|JemallocBench\.(jemalloc|jemallocCritical)2t$|UnsafeBench\.unsafe2t$|ArenaBench\.confined2t$|NettyBench\.(pooled|adaptive)2t$' ;;
  batch)   sizes="${SIZES:-$pair_sizes}"; sel='BatchBench\.' ;;
  xthread) sizes="${SIZES:-16,64,1024}"; sel='CrossThreadBench\.' ;;
  mix)     sizes=""; sel='MixBench\.' ;;
  footprint)
    java_bin="$(jdk25)/bin/java"
    echo "load before: $(cat /proc/loadavg)"
    "$java_bin" -cp "$here/target/benchmarks.jar" io.gomem.bench.Footprint "$@"
    echo "load after: $(cat /proc/loadavg)"
    exit 0 ;;
  *) echo "unknown table $table: pair|pair2t|batch|xthread|mix|footprint" >&2; exit 2 ;;
esac
mkdir -p "$here/target/results"
out="$here/target/results/$table.json"
params=()
[[ -n "$sizes" ]] && params=(-p "size=$sizes")
rev="$(git -C "$here" log -1 --format='%h %cd' --date=iso 2>/dev/null || echo 'no git')"
dirty="$(git -C "$here" status --porcelain -- "$here/../src" 2>/dev/null | wc -l || true)"
echo "repository at $rev ($dirty changed files under java/src); $(date -u '+%F %T UTC')"
echo "(the jar holds the gomem last installed: rebuild with the commands in run.sh before recording)"
echo "load before: $(cat /proc/loadavg)"
"$here/run.sh" "${opts[@]}" "${params[@]}" -rf json -rff "$out" "$@" "$sel" > "$here/target/results/$table.log"
echo "load after: $(cat /proc/loadavg)"
echo "JMH: ${opts[*]}; log: $here/target/results/$table.log"
echo
python3 "$here/tables.py" "$table" "$out" "$here/target/results/$table.log"
