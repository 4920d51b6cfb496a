package io.gomem;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static io.gomem.GoHeapSafetyTest.runForked;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Heap segments after the heap's close (JDK 25): a forked child, as {@link GoHeapSafetyTest}'s. */
class GoHeapSegmentsSafetyTest {
    // ───────────────────────────── segments after close ─────────────────────────────

    /**
     * Child: segments of every size kind from {@code heap.segments()}, then the heap closes; every
     * access through them must throw IllegalStateException (the scope is closed) and never fault.
     * Exit 0 only if each access threw and {@code scope().isAlive()} turned false.
     */
    static final class SegmentsAfterClose {
        public static void main(String[] args) {
            GoHeap heap = GoHeap.builder().build();
            GoHeap.Segments seg = heap.segments();
            java.util.List<MemorySegment> segs = new ArrayList<>();
            for (long size : new long[] {8, 64, 4096, 40_000, 1 << 20}) {
                MemorySegment m = seg.allocate(size, 8);
                m.fill((byte) 1);
                segs.add(m);
            }
            MemorySegment text = seg.allocateFrom("gomem");
            segs.add(text);
            for (MemorySegment m : segs) {
                if (!m.scope().isAlive()) {
                    System.out.println("FAILED: a live heap's segment is not alive");
                    System.exit(3);
                }
            }
            heap.close();
            int threw = 0;
            for (MemorySegment m : segs) {
                if (m.scope().isAlive()) {
                    System.out.println("FAILED: a closed heap's segment is alive");
                    System.exit(3);
                }
                java.util.List<Runnable> uses = List.of(
                        () -> m.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0),
                        () -> m.set(java.lang.foreign.ValueLayout.JAVA_BYTE, 0, (byte) 2),
                        () -> m.fill((byte) 3),
                        () -> m.copyFrom(MemorySegment.ofArray(new byte[(int) Math.min(8, m.byteSize())])),
                        () -> m.asSlice(0, 1).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE),
                        () -> m.getString(0));
                for (Runnable u : uses) {
                    try {
                        u.run();
                        System.out.println("FAILED: an access after close returned");
                        System.exit(3);
                    } catch (IllegalStateException expected) {
                        threw++;
                    }
                }
            }
            System.out.println("accesses after close refused " + threw);
        }
    }

    @Test
    void segmentsDieWithTheirHeapAccessesAfterCloseThrowAndNeverFault() throws Exception {
        String out = runForked(SegmentsAfterClose.class, 60, List.of());
        assertTrue(out.contains("accesses after close refused 36"), out);
    }
}
