package io.gomem.bench;

import io.gomem.GoHeap;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * Random 8-byte reads over 1 GiB of live small objects, for {@code gomem.hugePages} off against
 * advise (run it once with each; BENCHMARKS.md). Fills the heap with 64-byte objects (each
 * written once), then times rounds of reads at random objects (the order drawn up front, so the
 * loop is loads only) and prints ns per access, the process's RSS and the AnonHugePages of the
 * heap's mappings ({@code /proc/self/smaps}). A plain program, not JMH: one heap of 1 GiB per
 * JVM, read many times; the TLB is what differs between the modes.
 *
 * <pre>java --enable-native-access=ALL-UNNAMED -Xmx2g -Dgomem.hugePages=advise -cp benchmarks.jar io.gomem.bench.HugePagesBench</pre>
 */
public final class HugePagesBench {
    private HugePagesBench() {
    }

    @SuppressWarnings("restricted")
    private static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
    static final long HEAP_RANGE = 0x00c0L << 32;

    public static void main(String[] args) throws IOException {
        long live = args.length > 0 ? Long.parseLong(args[0]) : 1L << 30;
        int objects = (int) (live / 64);
        int reads = 1 << 24;
        try (GoHeap heap = GoHeap.builder().build()) {
            long[] addr = new long[objects];
            long t0 = System.nanoTime();
            for (int i = 0; i < objects; i++) {
                addr[i] = heap.allocate(64);
                ALL.set(ValueLayout.JAVA_LONG, addr[i], i);
            }
            long fillMs = (System.nanoTime() - t0) / 1_000_000;
            int[] order = new int[reads];
            SplittableRandom r = new SplittableRandom(42);
            for (int i = 0; i < reads; i++) {
                order[i] = r.nextInt(objects);
            }
            long best = Long.MAX_VALUE;
            long sum = 0;
            for (int round = 0; round < 8; round++) {
                long t = System.nanoTime();
                for (int i = 0; i < reads; i++) {
                    sum += ALL.get(ValueLayout.JAVA_LONG, addr[order[i]]);
                }
                best = Math.min(best, System.nanoTime() - t);
            }
            System.out.printf("hugePages=%s live %d MiB in %d objects of 64 B, filled in %d ms: random read %.2f ns"
                    + " (best of 8 rounds of %d), RSS %d MiB, AnonHugePages %d MiB (checksum %d)%n",
                    System.getProperty("gomem.hugePages", "off"), live >> 20, objects, fillMs, (double) best / reads, reads,
                    rssKiB() >> 10, io.gomem.os.KernelView.anonHugePages(HEAP_RANGE, HEAP_RANGE + (64L << 30)) >> 20, sum);
        }
    }

    static long rssKiB() throws IOException {
        for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (l.startsWith("VmRSS:")) {
                return Long.parseLong(l.replaceAll("[^0-9]", ""));
            }
        }
        return -1;
    }

}
