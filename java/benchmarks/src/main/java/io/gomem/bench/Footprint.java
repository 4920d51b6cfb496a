package io.gomem.bench;

import io.gomem.stats.MemStats;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The footprint churn, per allocator, each in its own JVM (not a JMH benchmark):
 * <ol>
 *   <li><b>fill</b>: allocate blocks of random sizes, uniform in 16 B – 4 KiB (seeded), until
 *       their sizes add up to {@code --mib} MiB (256 by default), writing one byte in every 4 KiB
 *       of each block and its last byte, so every page the data lies on is touched;</li>
 *   <li><b>free 90%</b>: free a random 90% of the blocks (a seeded permutation), keeping 10%;</li>
 *   <li><b>release</b>: ask the allocator to give free memory back: gomem
 *       {@code GoHeap.releaseMemory()}; glibc {@code malloc_trim(0)}; jemalloc
 *       {@code mallctl("thread.tcache.flush")} then {@code mallctl("arena.4096.purge")}
 *       (4096 = {@code MALLCTL_ARENAS_ALL} in jemalloc 5).</li>
 * </ol>
 * After each step it reports the live bytes (the sizes asked for of the blocks not freed) and the
 * resident memory the allocator holds for them, and their ratio.
 *
 * <p><b>How resident memory is measured.</b> Before the fill, the program records, for every
 * writable anonymous mapping of the process, which pages are resident ({@code mincore}). After
 * the fill it finds the mappings ({@code /proc/self/maps}) that hold at least one block: those are
 * the allocator's heap (gomem's arenas, glibc's arena heaps, jemalloc's extents). At each step the
 * resident bytes are the pages of those address ranges resident now ({@code mincore} over what is
 * still mapped of them) minus those that were resident before the fill: the memory the allocator
 * made resident for this workload, counting its in-heap metadata (glibc's chunk headers, gomem's
 * and jemalloc's free-page tracking are elsewhere and not counted) and nothing of the JVM's own.
 * As a cross-check the program also prints the growth of the process's {@code RssAnon}
 * ({@code /proc/self/status}) since the baseline, which counts everything (allocator metadata,
 * but also JIT compiler arenas and other JVM noise of a few MiB); the Java heap is fixed and
 * pre-touched ({@code -Xms128m -Xmx128m -XX:+AlwaysPreTouch}, Serial GC) so it does not move.
 *
 * <p>Each allocator runs in a child JVM started by this program, so none inherits another's
 * memory; the jemalloc child gets {@code GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384}.
 *
 * <pre>
 * java -cp java/benchmarks/target/benchmarks.jar io.gomem.bench.Footprint [--mib N] [--seed S] [allocator ...]
 * </pre>
 * Allocators: {@code gomem}, {@code malloc}, {@code jemalloc} (default: all three). Prints a
 * Markdown table; exits nonzero if a child fails.
 */
public final class Footprint {
    private Footprint() {
    }

    static final long PAGE = 4096;
    static final String RESULT = "FOOTPRINT-RESULT ";

    public static void main(String[] args) throws Throwable {
        long mib = 256;
        long seed = 42;
        String child = null;
        boolean verbose = false;
        List<String> allocators = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--mib" -> mib = Long.parseLong(args[++i]);
                case "--seed" -> seed = Long.parseLong(args[++i]);
                case "--child" -> child = args[++i];
                case "--verbose" -> verbose = true;
                case "-h", "--help" -> {
                    System.out.println("usage: Footprint [--mib N (256)] [--seed S (42)] [--verbose] [gomem|malloc|jemalloc ...]");
                    System.out.println("  --verbose: also list the mappings outside the allocator's heap that grew most");
                    return;
                }
                default -> allocators.add(args[i]);
            }
        }
        if (child != null) {
            runChild(child, mib, seed, verbose);
            return;
        }
        if (allocators.isEmpty()) {
            allocators = List.of("gomem", "malloc", "jemalloc");
        }
        System.exit(runParent(allocators, mib, seed, verbose));
    }

    // ─────────────────────────────── parent ───────────────────────────────

    static int runParent(List<String> allocators, long mib, long seed, boolean verbose) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<Map<String, String>> rows = new ArrayList<>();
        int failures = 0;
        for (String name : allocators) {
            List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-XX:+UseSerialGC",
                    "-Xms128m", "-Xmx128m", "-XX:+AlwaysPreTouch", "-cp", System.getProperty("java.class.path"),
                    Footprint.class.getName(), "--child", name, "--mib", Long.toString(mib), "--seed", Long.toString(seed)));
            if (verbose) {
                cmd.add("--verbose");
            }
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
            String tunables = System.getenv("GLIBC_TUNABLES");
            pb.environment().put("GLIBC_TUNABLES", (tunables == null || tunables.isEmpty() ? "" : tunables + ":")
                    + "glibc.rtld.optional_static_tls=16384");
            Process p = pb.start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            int rc = p.waitFor();
            Map<String, String> row = null;
            for (String line : out.split("\n")) {
                if (line.startsWith(RESULT)) {
                    row = parse(line.substring(RESULT.length()));
                } else if (!line.isBlank()) {
                    System.out.println(line); // the child's notes and any error
                }
            }
            if (rc != 0 || row == null) {
                System.err.println("footprint: " + name + " failed (exit " + rc + ")");
                failures++;
            } else {
                rows.add(row);
            }
        }
        System.out.printf("%nFootprint churn: fill %d MiB of 16 B - 4 KiB blocks (seed %d), free a random 90%%, release.%n", mib, seed);
        System.out.println("Resident = allocator's mappings, mincore, minus what was resident there before; ratio = resident / live.");
        System.out.println();
        System.out.println("| allocator | live after fill | resident after fill | live after free 90% | resident after free 90% | resident after release | RssAnon growth: fill / free / release (release ÷ live) |");
        System.out.println("|---|---:|---:|---:|---:|---:|---:|");
        for (Map<String, String> r : rows) {
            long liveFill = Long.parseLong(r.get("liveFill"));
            long liveKept = Long.parseLong(r.get("liveKept"));
            System.out.printf("| %s | %s | %s (%.2f×) | %s | %s (%.2f×) | %s (**%.2f×**) | %s / %s / %s (%.2f×) |%n", r.get("allocator"),
                    mb(liveFill), mb(r.get("resFill")), ratio(r.get("resFill"), liveFill), mb(liveKept),
                    mb(r.get("resFree")), ratio(r.get("resFree"), liveKept), mb(r.get("resRelease")),
                    ratio(r.get("resRelease"), liveKept), mb(r.get("anonFill")), mb(r.get("anonFree")),
                    mb(r.get("anonRelease")), ratio(r.get("anonRelease"), liveKept));
        }
        return failures == 0 ? 0 : 1;
    }

    static Map<String, String> parse(String line) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String kv : line.trim().split(" ")) {
            int eq = kv.indexOf('=');
            m.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        return m;
    }

    static String mb(Object bytes) {
        return String.format("%.1f MiB", Long.parseLong(bytes.toString()) / 1048576.0);
    }

    static double ratio(String bytes, long live) {
        return Long.parseLong(bytes) / (double) live;
    }

    // ─────────────────────────────── child ───────────────────────────────

    static void runChild(String name, long mib, long seed, boolean verbose) throws Throwable {
        // The workload, drawn before anything is measured.
        SplittableRandom random = new SplittableRandom(seed);
        long target = mib << 20;
        long[] sizes = new long[1024];
        int n = 0;
        for (long total = 0; total < target; n++) {
            if (n == sizes.length) {
                sizes = Arrays.copyOf(sizes, n * 2);
            }
            sizes[n] = random.nextLong(16, 4097);
            total += sizes[n];
        }
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        SplittableRandom shuffle = new SplittableRandom(seed + 1);
        for (int i = n - 1; i > 0; i--) {
            int j = shuffle.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        int kept = n / 10;
        long[] addr = new long[n];
        long liveFill = 0;
        for (int i = 0; i < n; i++) {
            liveFill += sizes[i];
        }
        long liveKept = 0;
        for (int i = 0; i < kept; i++) {
            liveKept += sizes[order[i]];
        }

        try (Allocator a = Allocator.create(name.equals("malloc") ? "mallocCritical" : name.equals("jemalloc") ? "jemallocCritical" : name)) {
            if (!a.addresses()) {
                throw new IllegalArgumentException(name + " does not hand out addresses");
            }
            System.gc();
            Baseline base = Baseline.take();

            for (int i = 0; i < n; i++) {
                long p = a.allocate(sizes[i]);
                for (long off = 0; off < sizes[i]; off += PAGE) {
                    MixBench.ALL.set(ValueLayout.JAVA_BYTE, p + off, (byte) 1);
                }
                MixBench.ALL.set(ValueLayout.JAVA_BYTE, p + sizes[i] - 1, (byte) 1);
                addr[i] = p;
            }
            List<long[]> heap = mappingsHolding(addr);
            long resFill = base.grown(heap);
            long anonFill = rssAnon() - base.rssAnon;

            for (int i = kept; i < n; i++) {
                a.free(addr[order[i]]);
            }
            long resFree = base.grown(heap);
            long anonFree = rssAnon() - base.rssAnon;

            release(name, a);
            long resRelease = base.grown(heap);
            long anonRelease = rssAnon() - base.rssAnon;
            if (verbose) {
                base.printGrowthOutside(heap, name);
            }

            long span = 0;
            for (long[] r : heap) {
                span += r[1] - r[0];
            }
            System.out.printf("footprint %s: %d blocks, %d kept; the blocks lie in %d mappings spanning %.1f MiB%n",
                    name, n, kept, heap.size(), span / 1048576.0);
            if (a instanceof Allocator.GoMem g) {
                MemStats m = g.heap.memStats();
                System.out.printf("footprint gomem's own view after release: HeapAlloc %.1f MiB, HeapInuse %.1f MiB, Ready %.1f MiB%n",
                        m.heapAlloc() / 1048576.0, m.heapInuse() / 1048576.0, m.osReady() / 1048576.0);
            }
            for (int i = 0; i < kept; i++) {
                int k = order[i];
                if (MixBench.ALL.get(ValueLayout.JAVA_BYTE, addr[k] + sizes[k] - 1) != 1) {
                    throw new IllegalStateException("a live block lost its data after the release");
                }
                a.free(addr[k]);
            }
            System.out.println(RESULT + "allocator=" + name + " blocks=" + n + " liveFill=" + liveFill + " liveKept=" + liveKept
                    + " resFill=" + resFill + " resFree=" + resFree + " resRelease=" + resRelease
                    + " anonFill=" + anonFill + " anonFree=" + anonFree + " anonRelease=" + anonRelease);
        }
    }

    static void release(String name, Allocator a) throws Throwable {
        switch (name) {
            case "gomem" -> ((Allocator.GoMem) a).heap.releaseMemory();
            case "malloc" -> {
                int rc = (int) Glibc.MALLOC_TRIM.invokeExact(0L);
                if (rc < 0) {
                    throw new IllegalStateException("malloc_trim returned " + rc);
                }
            }
            case "jemalloc" -> {
                Jemalloc.mallctl("thread.tcache.flush");
                Jemalloc.mallctl("arena.4096.purge");
            }
            default -> throw new IllegalArgumentException("no release step for " + name + ": gomem, malloc or jemalloc");
        }
    }

    // ───────────────────────────── measuring ─────────────────────────────

    /** One line of /proc/self/maps: [start, end), permissions, and whether it is anonymous. */
    record Mapping(long start, long end, String perms, boolean anonymous) {
    }

    static List<Mapping> maps() {
        List<Mapping> out = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
                String[] f = line.trim().split("\\s+", 6);
                int dash = f[0].indexOf('-');
                long start = Long.parseUnsignedLong(f[0].substring(0, dash), 16);
                long end = Long.parseUnsignedLong(f[0].substring(dash + 1), 16);
                String path = f.length > 5 ? f[5] : "";
                boolean anon = f[4].equals("0") && (path.isEmpty() || path.equals("[heap]") || path.startsWith("[anon"));
                out.add(new Mapping(start, end, f[1], anon));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    /** The address ranges of the mappings holding at least one of {@code addr}, merged, in order. */
    static List<long[]> mappingsHolding(long[] addr) {
        long[] sorted = addr.clone();
        Arrays.sort(sorted);
        List<long[]> out = new ArrayList<>();
        for (Mapping m : maps()) {
            int i = Arrays.binarySearch(sorted, m.start);
            int at = i >= 0 ? i : -i - 1;
            if (at < sorted.length && sorted[at] < m.end) {
                if (!out.isEmpty() && out.getLast()[1] == m.start) {
                    out.getLast()[1] = m.end;
                } else {
                    out.add(new long[] {m.start, m.end});
                }
            }
        }
        return out;
    }

    /** Resident pages before the workload, per writable anonymous mapping, and RssAnon. */
    record Baseline(List<long[]> ranges, List<byte[]> resident, long rssAnon) {
        static Baseline take() {
            List<long[]> ranges = new ArrayList<>();
            List<byte[]> resident = new ArrayList<>();
            for (Mapping m : maps()) {
                if (m.anonymous && m.perms.startsWith("rw")) {
                    byte[] vec;
                    try {
                        vec = mincore(m.start, m.end - m.start);
                    } catch (IllegalStateException gone) {
                        // The JVM unmapped it after /proc/self/maps was read (a compiler thread's
                        // stack, heap the GC gave back): nothing of it can be resident later.
                        continue;
                    }
                    ranges.add(new long[] {m.start, m.end});
                    resident.add(vec);
                }
            }
            return new Baseline(ranges, resident, Footprint.rssAnon());
        }

        /** Lists the anonymous mappings outside {@code heap} whose resident bytes grew most since the baseline. */
        void printGrowthOutside(List<long[]> heap, String name) {
            List<long[]> grown = new ArrayList<>(); // start, end, growth
            for (Mapping m : maps()) {
                if (!m.anonymous || !m.perms.startsWith("rw")) {
                    continue;
                }
                boolean inHeap = false;
                for (long[] r : heap) {
                    inHeap |= r[0] < m.end && m.start < r[1];
                }
                if (inHeap) {
                    continue;
                }
                long g = grown(List.of(new long[] {m.start, m.end}));
                if (g > 0) {
                    grown.add(new long[] {m.start, m.end, g});
                }
            }
            grown.sort((a, b) -> Long.compare(b[2], a[2]));
            long total = 0;
            for (long[] g : grown) {
                total += g[2];
            }
            System.out.printf("footprint %s: outside the heap, anonymous mappings grew by %.1f MiB; the largest:%n",
                    name, total / 1048576.0);
            for (long[] g : grown.subList(0, Math.min(6, grown.size()))) {
                System.out.printf("  %x-%x (%.1f MiB mapped): +%.1f MiB resident%n", g[0], g[1],
                        (g[1] - g[0]) / 1048576.0, g[2] / 1048576.0);
            }
        }

        /** Bytes of {@code heap} resident now and not resident at the baseline (now − then). */
        long grown(List<long[]> heap) {
            long now = 0;
            List<Mapping> current = maps();
            for (long[] r : heap) {
                for (Mapping m : current) {
                    long s = Math.max(r[0], m.start);
                    long e = Math.min(r[1], m.end);
                    if (s < e) {
                        now += count(mincore(s, e - s)) * PAGE;
                    }
                }
            }
            long then = 0;
            for (int k = 0; k < ranges.size(); k++) {
                long[] b = ranges.get(k);
                byte[] vec = resident.get(k);
                for (long[] r : heap) {
                    long s = Math.max(r[0], b[0]);
                    long e = Math.min(r[1], b[1]);
                    for (long a = s; a < e; a += PAGE) {
                        then += (vec[(int) ((a - b[0]) / PAGE)] & 1) * PAGE;
                    }
                }
            }
            return now - then;
        }
    }

    static long count(byte[] vec) {
        long n = 0;
        for (byte b : vec) {
            n += b & 1;
        }
        return n;
    }

    /** Bound on first use, in the child only (the parent needs no native access). */
    private static final class Mincore {
        @SuppressWarnings("restricted")
        static final MethodHandle MINCORE = Linker.nativeLinker().downcallHandle(
                Linker.nativeLinker().defaultLookup().find("mincore").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
    }

    /** mincore over [addr, addr+len) (page-aligned, mapped): one byte per page, bit 0 = resident. */
    static byte[] mincore(long addr, long len) {
        long pages = len / PAGE;
        if (pages > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("range too large for one vector: " + len);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment vec = arena.allocate(Math.max(pages, 1));
            int rc = (int) Mincore.MINCORE.invokeExact(addr, len, vec);
            if (rc != 0) {
                throw new IllegalStateException("mincore(0x" + Long.toHexString(addr) + ", " + len + ") failed");
            }
            return vec.asSlice(0, pages).toArray(ValueLayout.JAVA_BYTE);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** RssAnon of this process, in bytes. */
    static long rssAnon() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("RssAnon:")) {
                    String kb = line.substring(8).trim();
                    return Long.parseLong(kb.substring(0, kb.indexOf(' '))) * 1024;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        throw new IllegalStateException("no RssAnon in /proc/self/status");
    }
}
