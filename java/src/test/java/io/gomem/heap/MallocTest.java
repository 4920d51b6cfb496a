package io.gomem.heap;

import io.gomem.Mem;
import io.gomem.os.OsMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The entry points alone: size routing, zeroing, the sized free, and the tables published into its fields. */
class MallocTest {
    final Malloc m = Malloc.create(new OsMemory(), Malloc.Config.of(1));

    MallocTest() {
        Background.unregister(m); // sweeps happen when the tests say
    }

    @AfterEach
    void close() {
        m.close();
    }

    /** Where a request goes: the span it lands in says which path served it. */
    record Route(String name, long size, long align, boolean zero, int state, int spanClass, long elemSize) {
        @Override
        public String toString() {
            return name;
        }
    }

    static final int LARGE = -1;

    static Stream<Route> routes() {
        return Stream.of(
                new Route("1 B, not zeroed: a tiny block", 1, 1, false, MSpan.STATE_SMALL, SizeClasses.TINY_SPAN_CLASS, 16),
                new Route("15 B, not zeroed: a tiny block", 15, 1, false, MSpan.STATE_SMALL, SizeClasses.TINY_SPAN_CLASS, 16),
                new Route("8 B zeroed: no tiny block (tiny blocks hold old data)", 8, 1, true, MSpan.STATE_SMALL,
                        SizeClasses.spanClass(SizeClasses.sizeToClass(8), false), 8),
                new Route("16 B: the 16-byte noscan class", 16, 1, false, MSpan.STATE_SMALL,
                        SizeClasses.spanClass(SizeClasses.sizeToClass(16), true), 16),
                new Route("100 B zeroed: the 112-byte zeroing class", 100, 8, true, MSpan.STATE_SMALL,
                        SizeClasses.spanClass(SizeClasses.sizeToClass(100), false), 112),
                new Route("1025 B: past the table of 8-byte steps", 1025, 1, false, MSpan.STATE_SMALL,
                        SizeClasses.spanClass(SizeClasses.sizeToClass(1025), true), SizeClasses.classSize(SizeClasses.sizeToClass(1025))),
                new Route("32 KiB: the largest class", 32768, 1, false, MSpan.STATE_SMALL,
                        SizeClasses.spanClass(SizeClasses.sizeToClass(32768), true), 32768),
                new Route("100 B aligned to 256: a class that is a multiple of 256", 100, 256, false, MSpan.STATE_SMALL,
                        SizeClasses.spanClass(SizeClasses.sizeToClass(256), true), 256),
                new Route("32 KiB + 1: large", 32769, 1, false, MSpan.STATE_LARGE, LARGE, 32769),
                new Route("64 B aligned to 16 KiB: large (no class is aligned past a page)", 64, 16384, false, MSpan.STATE_LARGE,
                        LARGE, 64),
                new Route("0 B: the smallest class", 0, 1, false, MSpan.STATE_SMALL,
                        SizeClasses.spanClass(SizeClasses.sizeToClass(0), true), SizeClasses.classSize(SizeClasses.sizeToClass(0))));
    }

    @ParameterizedTest
    @MethodSource("routes")
    void eachSizeTakesItsPath(Route r) {
        long p = r.zero() ? m.allocateZeroed(r.size(), r.align()) : m.allocate(r.size(), r.align(), false);
        assertEquals(0, p % r.align(), "aligned");
        MSpan s = m.heap.spanOf(p);
        assertEquals(r.state(), s.state, "span state");
        if (r.spanClass() != LARGE) {
            assertEquals(r.spanClass(), s.spanClass, "span class");
        }
        assertEquals(r.elemSize(), s.elemSize, "slot or object size");
        m.free(p);
        m.checkInvariants();
    }

    @Test
    void zeroedMemoryIsZeroEvenWhereOldDataLay() {
        int n = 512; // 512 slots of 64 B: one 32 KiB span... or several
        long[] ps = new long[n];
        for (int i = 0; i < n; i++) {
            ps[i] = m.allocate(64);
            Mem.at(ps[i], 64).fill((byte) 0x5A);
        }
        for (long p : ps) {
            m.free(p);
        }
        m.memStatsSwept(); // the slots are free again, their old bytes still there
        for (int i = 0; i < n; i++) {
            long p = m.allocateZeroed(64, 8);
            Mem seg = Mem.at(p, 64);
            for (int k = 0; k < 64; k += 8) {
                assertEquals(0L, seg.getLong(k), "slot " + i + " byte " + k);
            }
        }
    }

    /**
     * Zeroing clears exactly [p, p + n) on both of its paths (the JDK's fill under 512 bytes, a
     * loop of long stores from there, a byte tail after it): every length up to 1100 at every
     * start offset 0..7, with sentinels on both sides.
     */
    @Test
    void clearZeroesExactlyTheRangeOnBothPaths() {
        io.gomem.os.OsMemory os = new io.gomem.os.OsMemory(io.gomem.os.OsMemory.UnusedMode.DONTNEED);
        long page = io.gomem.os.OsMemory.PAGE_SIZE;
        long base = os.sysAlloc(page, io.gomem.os.Purpose.OTHER);
        try {
            Mem buf = Mem.at(base, 1200);
            for (int off = 0; off < 8; off++) {
                for (int n = 0; n <= 1100; n += (n < 600 ? 1 : 7)) {
                    buf.fill((byte) 0x77);
                    Memclr.clear(buf.address() + 16 + off, n);
                    for (int i = 0; i < 1200; i++) {
                        byte want = i >= 16 + off && i < 16 + off + n ? 0 : (byte) 0x77;
                        if (buf.getByte(i) != want) {
                            throw new AssertionError("clear(+" + (16 + off) + ", " + n + "): byte " + i + " is "
                                    + buf.getByte(i) + ", want " + want);
                        }
                    }
                }
            }
        } finally {
            os.sysFree(base, page);
        }
    }

    @Test
    void aSizedFreeRefusesASizeLargerThanTheBlockAndFreesNothing() {
        long p = m.allocate(100); // a 112-byte slot
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.free(p, 113));
        assertTrue(e.getMessage().contains("113 B") && e.getMessage().contains("112 B usable"), e.getMessage());
        assertEquals(112, m.usableSize(p), "still live");
        assertThrows(IllegalArgumentException.class, () -> m.free(p, -1));
        m.free(p, 112);
        assertThrows(IllegalStateException.class, () -> m.free(p), "freed once");
    }

    @Test
    void theFreePathReadsTheSpansTableThatTheHeapPublished() {
        long first = m.allocate(64);
        // Grow the heap by more than an arena: the flat table is replaced and republished.
        long big = m.allocate(200L << 20);
        long after = m.allocate(64);
        assertNotEquals(0, big);
        m.free(first);
        m.free(big);
        m.free(after);
        assertThrows(IllegalStateException.class, () -> m.free(big), "the large object is gone");
        m.checkInvariants();
    }
}
