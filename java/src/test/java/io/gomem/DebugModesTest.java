package io.gomem;

import io.gomem.internal.RawMemory;
import io.gomem.os.KernelView;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The debug modes that find use-after-free ({@code gomem.debug=clobberfree}, {@code efence},
 * {@code arenafault}), each in a child JVM started with the switch (they are read once per JVM),
 * and each against a control child without it, so that every test would fail if the mode did
 * nothing. A stale access that must fault kills the child with SIGSEGV: the test asserts that
 * exit, the fault's address in HotSpot's report, and that the child got no further.
 */
class DebugModesTest {

    record Exit(int code, String out) {
    }

    /** Runs {@code main} of {@code cls} in a child JVM with {@code gomem.debug=debug} (none if empty). */
    static Exit child(Class<?> cls, String debug) throws IOException, InterruptedException {
        Path dir = Files.createTempDirectory("gomem-debug");
        Path errorFile = dir.resolve("hs_err.log"); // HotSpot's crash report (truncates the file it opens: not stdout)
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-XX:+UseSerialGC", "-Xmx256m", "-XX:-CreateCoredumpOnCrash",
                "-XX:ErrorFile=" + errorFile));
        if (!debug.isEmpty()) {
            cmd.add("-Dgomem.debug=" + debug);
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), cls.getName()));
        Path out = dir.resolve("out.txt");
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor();
                fail(cls.getSimpleName() + " hung:\n" + Files.readString(out));
            }
            String text = Files.readString(out, StandardCharsets.UTF_8);
            if (Files.exists(errorFile)) {
                text += "\n--- crash report ---\n" + Files.readString(errorFile, StandardCharsets.ISO_8859_1);
            }
            return new Exit(p.exitValue(), text);
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(errorFile);
            Files.deleteIfExists(dir);
        }
    }

    static Mem raw(long address, long size) {
        return Mem.at(address, size);
    }

    // ───────────────────────────── clobberfree ─────────────────────────────

    /**
     * Child: objects of each kind (tiny, small, large; through the heap and through a held P),
     * filled with 0x11, freed, then read back through their raw addresses (the memory stays
     * mapped: a freed slot or a kept large span). Prints how many of them read 0xdeadbeef.
     */
    static final class Clobber {
        public static void main(String[] args) {
            try (GoHeap heap = GoHeap.builder().build()) {
                long[] sizes = {8, 64, 1000, 40_000, 200_000};
                int clobbered = 0;
                int total = 0;
                for (int round = 0; round < 2; round++) {
                    for (long size : sizes) {
                        long p;
                        GoHeap.Local local = round == 1 ? heap.local() : null;
                        p = local != null ? local.allocate(size) : heap.allocate(size);
                        raw(p, size).fill((byte) 0x11);
                        if (local != null) {
                            local.free(p);
                        } else {
                            heap.free(p);
                        }
                        long n = Math.min(size, 64);
                        boolean pattern = true;
                        for (int i = 0; i + 4 <= n; i += 4) {
                            pattern &= raw(p, n).getInt(i) == 0xdeadbeef;
                        }
                        clobbered += pattern ? 1 : 0;
                        System.out.println((round == 1 ? "held P, " : "") + size + " B: " + (pattern ? "clobbered" : "as written"));
                        total++;
                        if (local != null) {
                            local.close();
                        }
                    }
                }
                // A double free is still refused, and writes nothing into a reallocated slot.
                long a = heap.allocate(64);
                heap.free(a);
                try {
                    heap.free(a);
                    System.out.println("FAILED: a double free returned");
                } catch (IllegalStateException expected) {
                    System.out.println("double free refused");
                }
                heap.checkInvariants();
                System.out.println("clobbered " + clobbered + " of " + total);
            }
        }
    }

    @Test
    void clobberfreeFillsFreedObjectsWithTheGoPattern() throws Exception {
        Exit on = child(Clobber.class, "clobberfree");
        assertEquals(0, on.code(), on.out());
        assertTrue(on.out().contains("clobbered 10 of 10"), on.out());
        assertTrue(on.out().contains("double free refused"), on.out());
        Exit off = child(Clobber.class, "");
        assertEquals(0, off.code(), off.out());
        assertTrue(off.out().contains("clobbered 0 of 10"), "without the switch nothing is clobbered: " + off.out());
    }

    // ───────────────────────────── efence ─────────────────────────────

    /**
     * Child: under efence every object has pages of its own; after its free they are PROT_NONE
     * (asked of the kernel), a second free says double free, the heap's figures and invariants
     * hold, and the freed pages are never handed out again. Then (argument "touch") a read of the
     * freed object through a heap segment, which must kill the JVM with SIGSEGV.
     */
    static final class Efence {
        public static void main(String[] args) {
            GoHeap heap = GoHeap.builder().build();
            long[] ps = new long[16];
            for (int i = 0; i < ps.length; i++) {
                ps[i] = heap.allocate(16 + i * 8);
            }
            boolean ownPages = true;
            for (long p : ps) {
                ownPages &= (p & 8191) == 0;
            }
            System.out.println("own pages " + ownPages);
            long victim = ps[3];
            heap.free(victim);
            System.out.println("perms after free " + KernelView.permsAt(victim));
            try {
                heap.free(victim);
                System.out.println("FAILED: double free returned");
            } catch (IllegalStateException e) {
                System.out.println("second free: " + e.getMessage());
            }
            boolean reused = false;
            for (int i = 0; i < 1000; i++) {
                long q = heap.allocate(40);
                reused |= q == victim;
                heap.free(q);
            }
            System.out.println("reused " + reused);
            heap.checkInvariants();
            heap.memStatsSwept().checkInvariants();
            long stale = heap.allocateZeroed(64, 8);
            heap.free(stale);
            System.out.println("about to touch 0x" + Long.toHexString(stale));
            System.out.flush();
            if (args.length > 0) {
                long v = RawMemory.getLong(stale); // use after free
                System.out.println("survived the stale read: " + v);
            }
            heap.close();
            System.out.println("done");
        }
    }

    @Test
    void efenceGivesEachObjectItsOwnPagesAndFaultsThemOnFree() throws Exception {
        Exit e = child(Efence.class, "efence");
        assertEquals(0, e.code(), e.out());
        assertTrue(e.out().contains("own pages true"), e.out());
        assertTrue(e.out().contains("perms after free ---p"), "the kernel shows the freed page PROT_NONE: " + e.out());
        assertTrue(e.out().contains("second free: double free"), e.out());
        assertTrue(e.out().contains("reused false"), e.out());
        Exit off = child(Efence.class, "");
        assertEquals(0, off.code(), off.out());
        assertTrue(off.out().contains("own pages false") && off.out().contains("perms after free rw-p"), off.out());
    }

    @Test
    void efenceFaultsAStaleAccessAtOnce() throws Exception {
        Exit e = child(EfenceTouch.class, "efence");
        assertCrashedAt(e);
        Exit off = child(EfenceTouch.class, "");
        assertEquals(0, off.code(), "without efence the stale read returns (a silent use-after-free): " + off.out());
        assertTrue(off.out().contains("survived the stale read"), off.out());
    }

    static final class EfenceTouch {
        public static void main(String[] args) {
            Efence.main(new String[] {"touch"});
        }
    }

    /** The child died of SIGSEGV at the address it printed before the access, and printed nothing after. */
    static void assertCrashedAt(Exit e) {
        assertNotEquals(0, e.code(), "the stale access must fault: " + e.out());
        assertTrue(e.out().contains("SIGSEGV"), "HotSpot reports SIGSEGV: " + tail(e.out()));
        int i = e.out().indexOf("about to touch 0x");
        assertTrue(i >= 0, e.out());
        String addr = e.out().substring(i + "about to touch ".length()).split("\\s")[0];
        String padded = String.format("0x%016x", Long.parseUnsignedLong(addr.substring(2), 16));
        assertTrue(e.out().contains("si_addr: " + padded),
                "the fault is at the freed object " + addr + ": " + tail(e.out()));
        String before = e.out().substring(0, Math.max(0, e.out().indexOf("--- crash report ---")));
        assertTrue(!before.contains("survived") && !before.contains("\ndone"), "nothing ran after the access: " + before);
    }

    private static String tail(String s) {
        int i = s.indexOf("SIGSEGV");
        return s.substring(Math.max(0, i - 200), Math.min(s.length(), Math.max(0, i) + 1500));
    }
}
