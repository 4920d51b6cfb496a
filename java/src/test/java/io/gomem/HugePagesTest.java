package io.gomem;

import io.gomem.internal.RawMemory;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static io.gomem.GoHeapSafetyTest.runForked;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code gomem.hugePages=advise} asked of the kernel: a child JVM fills 64 MiB of small objects
 * and reads {@code AnonHugePages} of the heap's mappings in {@code /proc/self/smaps}, then frees
 * everything, releases it, and reads again. With advice the heap is backed by huge pages while it
 * is dense, and none are left once released; without it (THP in {@code madvise} mode, as here)
 * none at all. Skipped, saying why, where the kernel's THP is {@code never}.
 */
class HugePagesTest {
    static final long HEAP_RANGE = 0x00c0L << 32;


    static final class Fill {
        public static void main(String[] args) throws IOException {
            try (GoHeap heap = GoHeap.builder().build()) {
                List<Long> live = new ArrayList<>();
                for (int i = 0; i < (64 << 20) / 64; i++) {
                    long p = heap.allocate(64);
                    RawMemory.putLong(p, i); // touch every object
                    live.add(p);
                }
                System.out.println("dense: AnonHugePages " + io.gomem.os.KernelView.anonHugePages(HEAP_RANGE, HEAP_RANGE + (1L << 30)));
                for (long p : live) {
                    heap.free(p);
                }
                heap.releaseMemory();
                System.out.println("released: AnonHugePages " + io.gomem.os.KernelView.anonHugePages(HEAP_RANGE, HEAP_RANGE + (1L << 30)));
            }
        }
    }

    static long figure(String out, String label) {
        for (String l : out.split("\n")) {
            if (l.startsWith(label + ": AnonHugePages ")) {
                return Long.parseLong(l.substring((label + ": AnonHugePages ").length()).trim());
            }
        }
        throw new AssertionError("no '" + label + "' line in:\n" + out);
    }

    static final class BadValue {
        public static void main(String[] args) {
            try (GoHeap heap = GoHeap.builder().build()) {
                System.out.println("FAILED: made " + heap);
            } catch (IllegalArgumentException e) {
                System.out.println("refused: " + e.getMessage());
            }
        }
    }

    @Test
    void aValueOtherThanOffOrAdviseIsRefusedAtHeapCreation() throws Exception {
        String out = runForked(BadValue.class, 60, List.of("-Dgomem.hugePages=maybe"));
        assertTrue(out.contains("refused: gomem.hugePages=maybe") && out.contains("'off' or 'advise'"), out);
    }

    @Test
    void adviceBacksADenseHeapWithHugePagesAndReleaseTakesThemBack() throws Exception {
        String thp = Files.readString(Path.of("/sys/kernel/mm/transparent_hugepage/enabled"));
        Assumptions.assumeFalse(thp.contains("[never]"), "transparent huge pages are disabled on this kernel: " + thp.trim());
        String advise = runForked(Fill.class, 120, List.of("-Dgomem.hugePages=advise"));
        assertTrue(figure(advise, "dense") >= (16L << 20), "a dense 64 MiB heap under advice has huge pages: " + advise);
        assertEquals(0, figure(advise, "released"), "released chunks keep no huge page: " + advise);
        if (thp.contains("[madvise]")) {
            String off = runForked(Fill.class, 120, List.of("-Dgomem.hugePages=off"));
            assertEquals(0, figure(off, "dense"), "without advice, THP in madvise mode gives none: " + off);
        }
    }
}
