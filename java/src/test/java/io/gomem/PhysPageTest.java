package io.gomem;

import io.gomem.os.KernelView;
import io.gomem.os.OsMemory;
import io.gomem.stats.MemStats;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static io.gomem.GoHeapSafetyTest.runForked;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The heap on a simulated kernel with physical pages larger than its 8 KiB page (16 and 64 KiB,
 * as arm64 kernels have), each in a child JVM started with {@code gomem.physPageSize} and
 * {@code gomem.checkInvariants=true}. The OS layer refuses any range not aligned to the physical
 * page, so a misaligned {@code madvise} or {@code mprotect} fails the run; after
 * {@code releaseMemory()} the kernel is asked which of the heap's pages are resident.
 */
class PhysPageTest {

    /** Where a child JVM's first heap lies: Go's first arena hint (its arenas follow it, contiguous). */
    static final long HEAP_RANGE = 0x00c0L << 32;

    /** Child: rounds of random allocations and frees, releases, and the checks; prints what it saw. */
    static final class Churn {
        public static void main(String[] args) {
            long phys = OsMemory.PAGE_SIZE;
            System.out.println("physical page " + phys);
            SplittableRandom r = new SplittableRandom(16);
            long released = 0;
            try (GoHeap heap = GoHeap.builder().build()) {
                List<Long> live = new ArrayList<>();
                long first = heap.allocate(8);
                if (first < HEAP_RANGE || first >= HEAP_RANGE + (1L << 30)) {
                    System.out.println("FAILED: the heap is not at Go's first arena hint 0xc000000000 (0x"
                            + Long.toHexString(first) + "): the kernel check below reads that range");
                    System.exit(3);
                }
                live.add(first);
                for (int round = 0; round < 6; round++) {
                    for (int i = 0; i < 4000; i++) {
                        long size = r.nextInt(10) == 0 ? r.nextLong(32 << 10, 300 << 10) : r.nextLong(1, 4096);
                        live.add(heap.allocate(size));
                    }
                    for (int i = live.size() - 1; i >= 0; i--) {
                        if (r.nextBoolean()) {
                            heap.free(live.remove(i));
                        }
                    }
                    released += heap.releaseMemory();
                    heap.checkInvariants();
                    MemStats m = heap.memStats().checkInvariants();
                    // Released (Prepared) heap pages are not resident: the kernel holds at most the Ready ones.
                    long resident = 0;
                    for (KernelView.Mapping mp : KernelView.mappings(HEAP_RANGE, 1L << 30)) {
                        KernelView.Mapping c = mp.clip(HEAP_RANGE, 1L << 30);
                        resident += KernelView.residentBytes(c.start(), c.end() - c.start());
                    }
                    if (resident > m.osReady()) {
                        System.out.println("FAILED: " + resident + " B resident in the heap's range, but only " + m.osReady()
                                + " B Ready");
                        System.exit(3);
                    }
                }
                for (long p : live) {
                    heap.free(p);
                }
                released += heap.releaseMemory();
                heap.checkInvariants();
                MemStats m = heap.memStats().checkInvariants();
                System.out.println("released " + released + " B; at the end Ready " + m.osReady() + " B, in spans "
                        + m.heapInuse() + " B");
            }
            System.out.println("done");
        }
    }

    @ParameterizedTest(name = "physical page {0}")
    @ValueSource(strings = {"16k", "64k"})
    void theHeapWorksInWholePhysicalPages(String page) throws Exception {
        String out = runForked(Churn.class, 240, List.of("-Dgomem.physPageSize=" + page, "-Dgomem.checkInvariants=true"));
        long bytes = page.equals("16k") ? 16384 : 65536;
        assertTrue(out.contains("physical page " + bytes), out);
        assertTrue(out.contains("done") && out.matches("(?s).*released [1-9]\\d* B.*"), out);
    }

    /** Child: a physical page the heap cannot serve is refused when the heap is made, with a message naming it. */
    static final class TooLarge {
        public static void main(String[] args) {
            try (GoHeap heap = GoHeap.builder().build()) {
                System.out.println("FAILED: a heap was made over " + OsMemory.PAGE_SIZE + " B pages " + heap);
            } catch (IllegalStateException e) {
                System.out.println("refused: " + e.getMessage());
            }
        }
    }

    @Test
    void aPhysicalPageOverFiveHundredTwelveKiBIsRefusedAtHeapCreation() throws Exception {
        String out = runForked(TooLarge.class, 60, List.of("-Dgomem.physPageSize=1m"));
        assertTrue(out.contains("refused: the OS page size 1048576 bytes cannot be served"), out);
    }
}
