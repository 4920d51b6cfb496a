package io.gomem;

import io.gomem.os.KernelView;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static io.gomem.DebugModesTest.assertCrashedAt;
import static io.gomem.DebugModesTest.child;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The debug mode of arenas ({@code gomem.debug=arenafault}), JDK 25: each case in a child JVM, as {@link DebugModesTest}. */
class DebugModesArenaTest {
    // ───────────────────────────── arenafault ─────────────────────────────

    /**
     * Child: an arena's segment's raw address kept past the arena's close. Under arenafault the
     * chunk is PROT_NONE after close, quarantined (MemStats arenaFaulted; the next arena gets other
     * memory), a free of the address says so, and the invariants hold. Then (argument "touch") a
     * read through the raw address, which must kill the JVM with SIGSEGV.
     */
    static final class ArenaFault {
        public static void main(String[] args) {
            GoHeap heap = GoHeap.builder().build();
            long addr;
            try (Arena arena = heap.ofConfined()) {
                MemorySegment s = arena.allocate(100);
                s.fill((byte) 7);
                addr = s.address();
            }
            System.out.println("perms after close " + KernelView.permsAt(addr));
            System.out.println("faulted bytes " + heap.memStats().arenaFaulted());
            boolean reused = false;
            for (int i = 0; i < 100; i++) {
                try (Arena arena = heap.ofConfined()) {
                    long a = arena.allocate(100).address();
                    reused |= a >>> 16 == addr >>> 16;
                }
            }
            System.out.println("reused " + reused);
            try {
                heap.free(addr);
                System.out.println("FAILED: free of closed arena memory returned");
            } catch (IllegalArgumentException e) {
                System.out.println("free: " + e.getMessage());
            }
            heap.checkInvariants();
            heap.memStatsSwept().checkInvariants();
            System.out.println("about to touch 0x" + Long.toHexString(addr));
            System.out.flush();
            if (args.length > 0) {
                byte v = DebugModesTest.raw(addr, 100).getByte(0); // a raw address out of a closed arena
                System.out.println("survived the stale read: " + v);
            }
            heap.close();
            System.out.println("done");
        }
    }

    static final class ArenaFaultTouch {
        public static void main(String[] args) {
            ArenaFault.main(new String[] {"touch"});
        }
    }

    @Test
    void arenafaultQuarantinesAClosedArenasChunksFaulted() throws Exception {
        DebugModesTest.Exit e = child(ArenaFault.class, "arenafault");
        assertEquals(0, e.code(), e.out());
        assertTrue(e.out().contains("perms after close ---p"), e.out());
        assertTrue(e.out().contains("faulted bytes 65536"), e.out());
        assertTrue(e.out().contains("reused false"), e.out());
        assertTrue(e.out().contains("free: free of 0x") && e.out().contains("arenafault"), e.out());
        DebugModesTest.Exit off = child(ArenaFault.class, "");
        assertEquals(0, off.code(), off.out());
        assertTrue(off.out().contains("perms after close rw-p") && off.out().contains("faulted bytes 0")
                && off.out().contains("reused true"), "without the switch the chunk is reused: " + off.out());
    }

    @Test
    void arenafaultFaultsARawAccessAfterClose() throws Exception {
        assertCrashedAt(child(ArenaFaultTouch.class, "arenafault"));
        DebugModesTest.Exit off = child(ArenaFaultTouch.class, "");
        assertEquals(0, off.code(), off.out());
        assertTrue(off.out().contains("survived the stale read"), off.out());
    }
}
