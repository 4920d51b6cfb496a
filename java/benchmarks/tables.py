#!/usr/bin/env python3
"""Turns a JMH JSON result file (-rf json) of one of BENCHMARKS.md's tables into that Markdown table.

usage: tables.py TABLE RESULT.json [JMH.log]     TABLE: pair | pair2t | batch | xthread | mix
Used by table.sh; see BENCHMARKS.md. A cell with no result shows "fails" if the JMH log (the run's
standard output) shows that benchmark failing, "not run" if the log does not mention it, and "—"
without a log.
"""
import json
import re
import sys

B = "io.gomem.bench."
PAIR = [  # (label, benchmark, is gomem)
    ("**gomem raw** `allocate`/`free`", "GoHeapBench.raw", True),
    ("**gomem segment** (zeroed) `segments().allocate`/`free`", "GoHeapBench.segment", True),
    ("glibc malloc, FFM", "MallocBench.malloc", False),
    ("glibc malloc, FFM `critical`", "MallocBench.mallocCritical", False),
    ("jemalloc, FFM", "JemallocBench.jemalloc", False),
    ("jemalloc, FFM `critical`", "JemallocBench.jemallocCritical", False),
    ("`Unsafe.allocateMemory`/`freeMemory`", "UnsafeBench.unsafe", False),
    ("`Arena.ofConfined()` allocate + close (zeroed)", "ArenaBench.confined", False),
    ("Netty `PooledByteBufAllocator.DEFAULT`", "NettyBench.pooled", False),
    ("Netty `AdaptiveByteBufAllocator`", "NettyBench.adaptive", False),
]
ALLOCATORS = [  # (@Param value, label)
    ("gomem", "**gomem** (raw API)"),
    ("malloc", "glibc malloc, FFM"),
    ("mallocCritical", "glibc malloc, FFM `critical`"),
    ("jemalloc", "jemalloc, FFM"),
    ("jemallocCritical", "jemalloc, FFM `critical`"),
    ("unsafe", "`Unsafe`"),
    ("nettyPooled", "Netty pooled (handle table)"),
]
PEER_NAME = {b: l for l, b, _ in PAIR}
PEER_NAME.update({a: l for a, l in ALLOCATORS})
SHORT = {  # names in the ratio rows
    "MallocBench.malloc": "malloc", "MallocBench.mallocCritical": "malloc crit.",
    "JemallocBench.jemalloc": "jemalloc", "JemallocBench.jemallocCritical": "jemalloc crit.",
    "UnsafeBench.unsafe": "Unsafe", "ArenaBench.confined": "Arena", "NettyBench.pooled": "Netty pooled",
    "NettyBench.adaptive": "Netty adaptive", "malloc": "malloc", "mallocCritical": "malloc crit.",
    "jemalloc": "jemalloc", "jemallocCritical": "jemalloc crit.", "unsafe": "Unsafe", "nettyPooled": "Netty pooled",
}
WORST = []  # (relative error, what) of every score printed
RAN = None  # {(benchmark, frozenset(params)): failed?} from the JMH log, or None without one


class Partial(float):
    """A score from the iterations before the benchmark threw (JMH keeps them)."""


PARTIAL_SEEN = []


def read_log(path):
    """Which benchmarks (name, parameters) the JMH log shows, and whether each failed."""
    ran = {}
    key = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("# Benchmark: "):
                name = line[len("# Benchmark: "):].strip()
                key = (name, frozenset())
                ran.setdefault(key, False)
            elif line.startswith("# Parameters: (") and key is not None:
                params = re.findall(r"(\w+) = ([^,)]+)", line)
                ran.pop(key, None)
                key = (key[0], frozenset((k, v.strip()) for k, v in params))
                ran.setdefault(key, False)
            elif key is not None and ("<failure>" in line or "Benchmark had encountered error" in line):
                ran[key] = True
    return ran


def size_label(s):
    s = int(s)
    if s >= 1024 and s % 1024 == 0:
        return f"{s // 1024} KiB"
    return f"{s} B"


def num(x):
    return x if isinstance(x, (int, float)) else None


def fmt(x):
    if isinstance(x, str):
        return x
    if isinstance(x, Partial):
        return fmt(float(x)) + " ⚠"
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.1f}"


def load(path):
    with open(path) as f:
        return json.load(f)


def score(results, bench, **params):
    for r in results:
        if r["benchmark"] != B + bench:
            continue
        if all(r["params"].get(k) == str(v) for k, v in params.items()):
            m = r["primaryMetric"]
            err = m.get("scoreError")
            if isinstance(err, (int, float)) and err == err and m["score"] > 0:
                WORST.append((err / m["score"], bench + " " + " ".join(f"{k}={v}" for k, v in params.items())))
            if RAN is not None and RAN.get((B + bench, frozenset((k, str(v)) for k, v in params.items()))):
                PARTIAL_SEEN.append(bench)
                return Partial(m["score"])
            return m["score"]
    if RAN is None:
        return "—"
    want = {(k, str(v)) for k, v in params.items()}
    for (name, ps), failed in RAN.items():
        if name == B + bench and want <= set(ps):
            return "fails" if failed else "no result"
    return "not run"


def present(results, key, bench_prefix=None):
    vals = set()
    for r in results:
        if bench_prefix and not r["benchmark"].startswith(B + bench_prefix):
            continue
        if key in r.get("params", {}):
            vals.add(r["params"][key])
    return sorted(vals, key=lambda v: int(v) if v.isdigit() else v)


def ratio_cell(g, peers):
    """gomem score g over the best (lowest) of peers [(name, score)]."""
    peers = [(n, s) for n, s in peers if num(s) is not None]
    if num(g) is None or not peers:
        return "—"
    n, best = min(peers, key=lambda p: p[1])
    b = n.removesuffix("2t") if n.endswith("2t") else n
    return f"{g / best:.2f}× ({SHORT.get(b, SHORT.get(n, n))})"


def target_cell(g, limit, applies):
    if not applies:
        return "n/a"
    if num(g) is None:
        return "✗ " + fmt(g)
    return f"✓ {fmt(g)}" if g <= limit else f"✗ {fmt(g)}"


def table_pair(results, suffix, threads_note):
    sizes = present(results, "size")
    print(f"ns per allocate + free pair{threads_note}, by size (lower is better)")
    print()
    print("| allocator | " + " | ".join(size_label(s) for s in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    table = {}
    for label, bench, _ in PAIR:
        row = [score(results, bench + suffix, size=s) for s in sizes]
        table[bench] = row
        print(f"| {label} | " + " | ".join(fmt(x) for x in row) + " |")
    peers = [b for _, b, g in PAIR if not g]
    for gname, glabel, limit in (("GoHeapBench.raw", "raw", 8), ("GoHeapBench.segment", "segment", 12)):
        cells = [ratio_cell(table[gname][i], [(b, table[b][i]) for b in peers]) for i in range(len(sizes))]
        print(f"| gomem {glabel} ÷ best peer | " + " | ".join(cells) + " |")
    for gname, glabel, limit in (("GoHeapBench.raw", "raw", 8), ("GoHeapBench.segment", "segment", 12)):
        cells = [target_cell(table[gname][i], limit, int(s) <= 32768) for i, s in enumerate(sizes)]
        print(f"| target: {glabel} ≤ {limit} ns (≤ 32 KiB) | " + " | ".join(cells) + " |")


def table_by_allocator(results, bench, col_key, cols, col_label, target=None, note=""):
    allocs = [a for a, _ in ALLOCATORS if a in present(results, "allocator", bench)]
    if "gomem" not in allocs:
        allocs = ["gomem"] + allocs
    print(note)
    print()
    print("| allocator | " + " | ".join(col_label(c) for c in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    table = {}
    for a in allocs:
        row = []
        for c in cols:
            if col_key is None:
                row.append(score(results, bench + c, allocator=a))
            else:
                row.append(score(results, bench, allocator=a, **{col_key: c}))
        table[a] = row
        print(f"| {PEER_NAME[a]} | " + " | ".join(fmt(x) for x in row) + " |")
    peers = [a for a in allocs if a != "gomem"]
    cells = [ratio_cell(table["gomem"][i], [(a, table[a][i]) for a in peers]) for i in range(len(cols))]
    print("| gomem ÷ best peer | " + " | ".join(cells) + " |")
    if target:
        limit, applies = target
        cells = [target_cell(table["gomem"][i], limit, applies(c)) for i, c in enumerate(cols)]
        print(f"| target: ≤ {limit} ns per pair (≤ 32 KiB) | " + " | ".join(cells) + " |")


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    if len(sys.argv) == 4:
        global RAN
        RAN = read_log(sys.argv[3])
    kind, path = sys.argv[1], sys.argv[2]
    results = load(path)
    if kind == "pair":
        table_pair(results, "", ", one thread")
    elif kind == "pair2t":
        table_pair(results, "2t", " per thread, two threads at once")
    elif kind == "batch":
        sizes = present(results, "size", "BatchBench")
        for method, what in (("inOrder", "in allocation order"), ("randomOrder", "in random order")):
            table_by_allocator(results, "BatchBench." + method, "size", sizes, size_label,
                               target=(10, lambda s: int(s) <= 32768),
                               note=f"**Batch, freed {what}**: 1000 allocations then 1000 frees, ns per pair")
            print()
    elif kind == "xthread":
        sizes = present(results, "size", "CrossThreadBench")
        table_by_allocator(results, "CrossThreadBench.xthread", "size", sizes, size_label,
                           note="**Cross-thread**: ns per block allocated on one thread and freed on another")
    elif kind == "mix":
        table_by_allocator(results, "MixBench.mix", None, ["1t", "2t", "4t"],
                           lambda c: f"{c[0]} thread" + ("s" if c[0] != "1" else ""), note="**Server-like mix**: ns per op (free + allocate) per thread")
    else:
        sys.exit(__doc__)
    if PARTIAL_SEEN:
        print()
        print("⚠: the benchmark threw in a later iteration; the score is the mean of the iterations before.")
    if WORST:
        e, what = max(WORST)
        print()
        print(f"Largest 99.9% error bar: ±{100 * e:.0f}% of the score ({what}); median ±"
              f"{100 * sorted(w for w, _ in WORST)[len(WORST) // 2]:.0f}%.")


if __name__ == "__main__":
    main()
