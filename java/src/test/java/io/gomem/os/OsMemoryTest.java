package io.gomem.os;

import io.gomem.Mem;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The OS layer against the kernel: every check reads /proc/self/maps, pagemap or mincore, never
 * only the tracker. Each test works inside its own reservation with a guard page on either side,
 * so the permissions /proc/self/maps gives for the range are the range's own; residency is read
 * per page of exactly the range, so pages of mappings the kernel merged with it never count.
 */
class OsMemoryTest {
    static final long PAGE = OsMemory.PAGE_SIZE;
    static final long PAGES = 32;
    static final long LEN = PAGES * PAGE;

    OsMemory os;
    long guarded;
    long base;

    @BeforeEach
    void reserve() {
        os = new OsMemory(OsMemory.UnusedMode.DONTNEED);
        guarded = os.sysReserve(0, LEN + 2 * PAGE, Purpose.OTHER);
        base = guarded + PAGE;
    }

    @AfterEach
    void release() {
        if (os.stateAt(guarded) != MemState.NONE) {
            os.sysFree(guarded, LEN + 2 * PAGE);
        }
        os.checkInvariants();
        assertEquals(0, os.bytes(MemState.RESERVED) + os.bytes(MemState.PREPARED) + os.bytes(MemState.READY),
                "everything freed");
    }

    private static void touch(long addr, long pages, byte value) {
        Mem s = Mem.at(addr, pages * PAGE);
        for (long i = 0; i < pages; i++) {
            s.setByte(i * PAGE, value);
        }
    }

    private void ready() {
        os.sysMap(base, LEN);
        os.sysUsed(base, LEN);
    }

    @Test
    void reservedRangeIsNoAccessWithNoRss() {
        assertEquals("---p", KernelView.permsAt(base));
        assertEquals(0, KernelView.rssBytes(guarded, LEN + 2 * PAGE));
        assertEquals(LEN + 2 * PAGE, os.bytes(MemState.RESERVED, Purpose.OTHER));
        assertTrue(os.isState(guarded, LEN + 2 * PAGE, MemState.RESERVED));
    }

    @Test
    void touchedReadyPagesAreResidentAndMincoreAgrees() {
        ready();
        assertEquals("rw-p", KernelView.permsAt(base));
        assertEquals(0, KernelView.rssBytes(base, LEN));
        for (long n : new long[] {1, 7, PAGES}) {
            touch(base, n, (byte) 1);
            assertEquals(n * PAGE, KernelView.rssBytes(base, LEN), "pagemap Rss after touching " + n + " pages");
            assertEquals(n * PAGE, KernelView.residentBytes(base, LEN), "mincore after touching " + n + " pages");
        }
        assertEquals(LEN, os.bytes(MemState.READY, Purpose.OTHER));
        assertEquals(2 * PAGE, os.bytes(MemState.RESERVED, Purpose.OTHER));
    }

    @Test
    void sysUnusedDropsRssAndContentsReadBackZero() {
        ready();
        touch(base, PAGES, (byte) 0x5a);
        assertEquals(LEN, KernelView.rssBytes(base, LEN));
        os.sysUnused(base, LEN);
        assertEquals(0, KernelView.rssBytes(base, LEN));
        assertEquals(0, KernelView.pages(base, LEN).present());
        assertEquals(0, KernelView.residentBytes(base, LEN));
        assertEquals(MemState.PREPARED, os.stateAt(base));
        Mem s = Mem.at(base, LEN);
        for (long off = 0; off < LEN; off += 512) {
            assertEquals(0, s.getByte(off), "byte at +" + off);
        }
        // Every page read is mapped again; whether to the shared zero page or to a frame of its own
        // is the kernel's choice, asked of it on a scratch page.
        boolean zeroPage = KernelView.readFaultMapsZeroPage();
        assertEquals(LEN, KernelView.pages(base, LEN).present(), "pagemap present after reading every page");
        assertEquals(LEN, KernelView.residentBytes(base, LEN), "mincore after reading every page");
        assertEquals(zeroPage ? 0 : LEN, KernelView.rssBytes(base, LEN),
                "pagemap Rss after reading every page (zero page shared: " + zeroPage + ")");
        os.sysUsed(base, LEN);
        touch(base, 3, (byte) 2);
        assertEquals(3 * PAGE, KernelView.rssBytes(base, 3 * PAGE), "the 3 pages written have frames of their own");
        assertEquals(zeroPage ? 0 : LEN - 3 * PAGE, KernelView.rssBytes(base + 3 * PAGE, LEN - 3 * PAGE),
                "pagemap Rss of the pages only read");
    }

    @Test
    void sysUnusedOfPartOfARangeSplitsIt() {
        ready();
        touch(base, PAGES, (byte) 1);
        os.sysUnused(base + 8 * PAGE, 8 * PAGE);
        assertEquals(LEN - 8 * PAGE, KernelView.residentBytes(base, LEN));
        assertEquals(MemState.READY, os.stateAt(base));
        assertEquals(MemState.PREPARED, os.stateAt(base + 8 * PAGE));
        assertEquals(MemState.PREPARED, os.stateAt(base + 15 * PAGE));
        assertEquals(MemState.READY, os.stateAt(base + 16 * PAGE));
        assertEquals(LEN - 8 * PAGE, os.bytes(MemState.READY));
        assertEquals(8 * PAGE, os.bytes(MemState.PREPARED));
        os.checkInvariants();
    }

    @Test
    void sysFaultMakesTheRangeNoAccessAgainAndDropsIt() {
        ready();
        touch(base, PAGES, (byte) 1);
        os.sysFault(base, LEN);
        assertEquals("---p", KernelView.permsAt(base));
        assertEquals(0, KernelView.rssBytes(guarded, LEN + 2 * PAGE));
        assertEquals(LEN + 2 * PAGE, os.bytes(MemState.RESERVED));
        // And it can be mapped again from Reserved.
        ready();
        touch(base, 2, (byte) 1);
        assertEquals(2 * PAGE, KernelView.rssBytes(base, LEN));
    }

    @Test
    void sysFreeRemovesTheMapping() {
        ready();
        touch(base, PAGES, (byte) 1);
        List<KernelView.Mapping> ours = KernelView.mappings(guarded, LEN + 2 * PAGE);
        assertFalse(ours.isEmpty());
        os.sysFree(guarded, LEN + 2 * PAGE);
        // Not "nothing is mapped there": another JVM thread may map the freed range at once.
        assertEquals(List.of(), KernelView.survivors(ours, guarded, LEN + 2 * PAGE), "none of our mappings left");
        assertEquals(MemState.NONE, os.stateAt(base));
    }

    @Test
    void sysFreeOfTheMiddleLeavesBothEnds() {
        List<KernelView.Mapping> ours = KernelView.mappings(base, LEN);
        os.sysFree(base, LEN);
        assertEquals(List.of(), KernelView.survivors(ours, base, LEN), "none of our mappings left in the middle");
        assertEquals("---p", KernelView.permsAt(guarded));
        assertEquals("---p", KernelView.permsAt(base + LEN));
        assertEquals(2 * PAGE, os.bytes(MemState.RESERVED));
        os.sysFree(guarded, PAGE);
        os.sysFree(base + LEN, PAGE);
    }

    @Test
    void sysAllocGoesStraightToReady() {
        long a = os.sysAlloc(4 * PAGE, Purpose.METADATA);
        try {
            assertEquals(MemState.READY, os.stateAt(a));
            assertEquals(4 * PAGE, os.bytes(MemState.READY, Purpose.METADATA));
            touch(a, 4, (byte) 9);
            assertEquals(4 * PAGE, KernelView.residentBytes(a, 4 * PAGE));
        } finally {
            os.sysFree(a, 4 * PAGE);
        }
        assertEquals(0, os.bytes(MemState.READY, Purpose.METADATA));
    }

    @Test
    void sysReserveAlignedReturnsAnAlignedRangeAndTracksOnlyIt() {
        long align = 4L << 20;
        long a = os.sysReserveAligned(0, 8L << 20, align, Purpose.HEAP);
        try {
            assertEquals(0, a % align, "aligned to 4 MiB");
            assertEquals(8L << 20, os.bytes(MemState.RESERVED, Purpose.HEAP));
            List<KernelView.Mapping> maps = KernelView.mappings(a, 8L << 20);
            assertFalse(maps.isEmpty());
            assertEquals("---p", KernelView.permsAt(a));
        } finally {
            os.sysFree(a, 8L << 20);
        }
    }

    // ───────────── illegal transitions: refused, no system call, kernel view unchanged ─────────────

    /** A state to put the test range in, then an illegal call on it. */
    record Illegal(String setup, BiConsumer<OsMemory, long[]> prepare, BiConsumer<OsMemory, long[]> call) {
    }

    static Stream<Arguments> illegalTransitions() {
        BiConsumer<OsMemory, long[]> reserved = (os, r) -> { };
        BiConsumer<OsMemory, long[]> prepared = (os, r) -> os.sysMap(r[0], r[1]);
        BiConsumer<OsMemory, long[]> readyTouched = (os, r) -> {
            os.sysMap(r[0], r[1]);
            os.sysUsed(r[0], r[1]);
            touch(r[0], 4, (byte) 3);
        };
        return Stream.of(
                c("sysMap of Prepared", prepared, (os, r) -> os.sysMap(r[0], r[1])),
                c("sysMap of Ready", readyTouched, (os, r) -> os.sysMap(r[0], r[1])),
                c("sysUsed of Reserved", reserved, (os, r) -> os.sysUsed(r[0], r[1])),
                c("sysUsed of Ready", readyTouched, (os, r) -> os.sysUsed(r[0], r[1])),
                c("sysUnused of Reserved", reserved, (os, r) -> os.sysUnused(r[0], r[1])),
                c("sysUnused of Prepared", prepared, (os, r) -> os.sysUnused(r[0], r[1])),
                c("sysFault of Reserved", reserved, (os, r) -> os.sysFault(r[0], r[1])),
                c("sysUsed of half Prepared half Reserved", (os, r) -> os.sysMap(r[0], r[1] / 2),
                        (os, r) -> os.sysUsed(r[0], r[1])),
                c("sysUnused of half Ready half Prepared", (os, r) -> {
                    os.sysMap(r[0], r[1]);
                    os.sysUsed(r[0], r[1] / 2);
                    touch(r[0], 2, (byte) 1);
                }, (os, r) -> os.sysUnused(r[0], r[1])),
                c("sysFree past the end of the region", readyTouched, (os, r) -> os.sysFree(r[0], r[1] + 2 * PAGE)),
                c("sysMap reaching before the region", reserved, (os, r) -> os.sysMap(r[0] - 2 * PAGE, r[1])),
                c("sysHugePage of Reserved", reserved, (os, r) -> os.sysHugePage(r[0], r[1])),
                c("sysHugePageCollapse of Prepared", prepared, (os, r) -> os.sysHugePageCollapse(r[0], r[1])));
    }

    private static Arguments c(String name, BiConsumer<OsMemory, long[]> prepare, BiConsumer<OsMemory, long[]> call) {
        return Arguments.of(Named.of(name, new Illegal(name, prepare, call)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("illegalTransitions")
    void illegalTransitionIsRefusedAndChangesNothing(Illegal t) {
        long[] r = {base, LEN};
        t.prepare().accept(os, r);
        String before = os.describe();
        List<KernelView.Mapping> kernelBefore = KernelView.layout(guarded, LEN + 2 * PAGE);
        KernelView.Pages pagesBefore = KernelView.pages(guarded, LEN + 2 * PAGE);
        long[] counts = {os.bytes(MemState.RESERVED), os.bytes(MemState.PREPARED), os.bytes(MemState.READY)};
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> t.call().accept(os, r));
        assertTrue(e.getMessage().contains("refused") && e.getMessage().contains("found"), e.getMessage());
        assertTrue(e.getMessage().contains("0x"), "names the range: " + e.getMessage());
        assertEquals(before, os.describe(), "tracker unchanged");
        assertEquals(kernelBefore, KernelView.layout(guarded, LEN + 2 * PAGE), "kernel's mappings unchanged");
        assertEquals(pagesBefore, KernelView.pages(guarded, LEN + 2 * PAGE), "kernel's residency unchanged");
        assertEquals(counts[0], os.bytes(MemState.RESERVED));
        assertEquals(counts[1], os.bytes(MemState.PREPARED));
        assertEquals(counts[2], os.bytes(MemState.READY));
        os.checkInvariants();
    }

    @Test
    void aRangeThatIsNotOursIsRefused() {
        long a = os.sysAlloc(PAGE, Purpose.OTHER);
        OsMemory other = new OsMemory(OsMemory.UnusedMode.DONTNEED);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> other.sysFree(a, PAGE));
        assertTrue(e.getMessage().contains("None"), e.getMessage());
        assertEquals("rw-p", KernelView.permsAt(a), "still mapped");
        os.sysFree(a, PAGE);
    }

    static Stream<Arguments> badArguments() {
        return Stream.of(
                Arguments.of(Named.of("unaligned address", (BiConsumer<OsMemory, Long>) (os, b) -> os.sysMap(b + 1, PAGE)), "0x"),
                Arguments.of(Named.of("zero length", (BiConsumer<OsMemory, Long>) (os, b) -> os.sysMap(b, 0)), "length 0"),
                Arguments.of(Named.of("negative length", (BiConsumer<OsMemory, Long>) (os, b) -> os.sysUsed(b, -PAGE)), "length -" + PAGE),
                Arguments.of(Named.of("length not a page multiple", (BiConsumer<OsMemory, Long>) (os, b) -> os.sysUnused(b, PAGE + 1)), "length " + (PAGE + 1)),
                Arguments.of(Named.of("range overflows", (BiConsumer<OsMemory, Long>) (os, b) -> os.sysFree(Long.MAX_VALUE - PAGE + 1, 2 * PAGE)), "overflows"),
                Arguments.of(Named.of("address zero", (BiConsumer<OsMemory, Long>) (os, b) -> os.sysFault(0, PAGE)), "address 0"),
                Arguments.of(Named.of("sysAlloc of a negative size", (BiConsumer<OsMemory, Long>) (os, b) -> os.sysAlloc(-1, Purpose.OTHER)), "length -1"),
                Arguments.of(Named.of("alignment not a power of two", (BiConsumer<OsMemory, Long>) (os, b) -> os.sysReserveAligned(0, PAGE, 3 * PAGE, Purpose.HEAP)), "power of two"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badArguments")
    void badArgumentsAreRefusedBeforeAnySystemCall(BiConsumer<OsMemory, Long> call, String mention) {
        String before = os.describe();
        List<KernelView.Mapping> kernelBefore = KernelView.layout(guarded, LEN + 2 * PAGE);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> call.accept(os, base));
        assertTrue(e.getMessage().contains(mention), "message names the value: " + e.getMessage());
        assertEquals(before, os.describe());
        assertEquals(kernelBefore, KernelView.layout(guarded, LEN + 2 * PAGE));
    }

    // ───────────── errno paths ─────────────

    @Test
    void unalignedMunmapIsEinvalWithNamesInTheMessage() {
        OsMemoryException e = assertThrows(OsMemoryException.class, () -> Syscalls.munmap("test", base + 1, PAGE));
        assertEquals("EINVAL", e.errnoName());
        assertEquals(Syscalls.EINVAL, e.errno());
        assertTrue(e.getMessage().contains("munmap") && e.getMessage().contains("EINVAL")
                && e.getMessage().contains("Invalid argument")
                && e.getMessage().contains(Long.toHexString(base + 1)), e.getMessage());
        assertEquals("---p", KernelView.permsAt(base), "nothing unmapped");
    }

    @Test
    void absurdReservationIsOutOfNativeMemoryErrorAndTheTrackerIsUnchanged() {
        String before = os.describe();
        long reserved = os.bytes(MemState.RESERVED);
        OutOfNativeMemoryError e = assertThrows(OutOfNativeMemoryError.class, () -> os.sysReserve(0, 1L << 50, Purpose.HEAP));
        assertInstanceOf(OutOfMemoryError.class, e);
        assertEquals("ENOMEM", e.errnoName());
        assertEquals(Syscalls.ENOMEM, e.errno());
        assertEquals("sysReserve", e.call());
        assertEquals("mmap", e.syscall());
        assertEquals(1L << 50, e.length());
        assertTrue(e.getMessage().startsWith("sysReserve: mmap ") && e.getMessage().contains("1 PiB")
                && e.getMessage().contains("ENOMEM (Cannot allocate memory)"), e.getMessage());
        assertEquals(before, os.describe());
        assertEquals(reserved, os.bytes(MemState.RESERVED));
        os.checkInvariants();
    }

    @Test
    void sysMapTheKernelRefusesIsOutOfNativeMemoryErrorAndTheRangeStaysReserved() throws IOException {
        long len = Overcommit.unmappableLength();
        assumeTrue(len > 0, "vm.overcommit_memory=1 maps any size");
        long a = os.sysReserve(0, len, Purpose.HEAP);
        try {
            String before = os.describe();
            OutOfNativeMemoryError e = assertThrows(OutOfNativeMemoryError.class, () -> os.sysMap(a, len));
            assertEquals("ENOMEM", e.errnoName());
            assertEquals("sysMap", e.call());
            assertEquals("mmap", e.syscall());
            assertEquals(a, e.address());
            assertEquals(len, e.length());
            assertTrue(e.getMessage().startsWith("sysMap: mmap [0x" + Long.toHexString(a))
                    && e.getMessage().contains("ENOMEM (Cannot allocate memory)"), e.getMessage());
            assertEquals(before, os.describe());
            assertTrue(os.isState(a, len, MemState.RESERVED));
            assertEquals("---p", KernelView.permsAt(a), "still reserved in the kernel");
            os.checkInvariants();
        } finally {
            os.sysFree(a, len);
        }
    }

    // ───────────── sysUnused modes ─────────────

    @Test
    void madvFreeModeLeavesTheRangePreparedAndReusable() {
        OsMemory free = new OsMemory(OsMemory.UnusedMode.FREE);
        long a = free.sysAlloc(8 * PAGE, Purpose.OTHER);
        try {
            touch(a, 8, (byte) 1);
            free.sysUnused(a, 8 * PAGE);
            assertEquals(MemState.PREPARED, free.stateAt(a));
            // MADV_FREE pages go lazily: Rss may stay until memory pressure. Reuse must work.
            free.sysUsed(a, 8 * PAGE);
            touch(a, 8, (byte) 2);
            assertEquals(2, Mem.at(a, PAGE).getByte(0));
            assertTrue(free.sysUnusedMode() == OsMemory.UnusedMode.FREE
                    || free.sysUnusedMode() == OsMemory.UnusedMode.DONTNEED);
        } finally {
            free.sysFree(a, 8 * PAGE);
        }
    }

    @Test
    void hardDecommitRemovesAccessWhilePrepared() {
        OsMemory hard = new OsMemory(OsMemory.UnusedMode.HARD_DECOMMIT);
        long a = hard.sysAlloc(8 * PAGE, Purpose.OTHER);
        try {
            touch(a, 8, (byte) 1);
            hard.sysUnused(a, 8 * PAGE);
            assertEquals("---p", KernelView.permsAt(a));
            assertEquals(0, KernelView.rssBytes(a, 8 * PAGE));
            hard.sysUsed(a, 8 * PAGE);
            assertEquals("rw-p", KernelView.permsAt(a));
            assertEquals(0, Mem.at(a, PAGE).getByte(0));
        } finally {
            hard.sysFree(a, 8 * PAGE);
        }
    }

    // ───────────── huge pages ─────────────

    private static String vmFlags(long addr) throws IOException {
        String flags = null;
        boolean in = false;
        for (String line : Files.readAllLines(Path.of("/proc/self/smaps"))) {
            int dash = line.indexOf('-');
            int sp = line.indexOf(' ');
            if (dash > 0 && sp > dash && line.substring(0, dash).matches("[0-9a-f]+")) {
                long s = Long.parseUnsignedLong(line.substring(0, dash), 16);
                long e = Long.parseUnsignedLong(line.substring(dash + 1, sp), 16);
                in = s <= addr && addr < e;
            } else if (in && line.startsWith("VmFlags:")) {
                flags = line.substring(8).trim();
            }
        }
        return flags;
    }

    @Test
    void hugePageAdviceReachesTheKernel() throws IOException {
        long len = 4 * OsMemory.HUGE_PAGE_SIZE;
        long a = os.sysReserveAligned(0, len, OsMemory.HUGE_PAGE_SIZE, Purpose.HEAP);
        try {
            os.sysMap(a, len);
            os.sysUsed(a, len);
            os.sysHugePage(a, len);
            assertTrue(List.of(vmFlags(a).split(" ")).contains("hg"), "VmFlags has hg: " + vmFlags(a));
            os.sysNoHugePage(a, len);
            assertTrue(List.of(vmFlags(a).split(" ")).contains("nh"), "VmFlags has nh: " + vmFlags(a));
            touch(a, len / PAGE, (byte) 1);
            boolean collapsed = os.sysHugePageCollapse(a, len); // best effort: either answer is legal
            assertEquals(MemState.READY, os.stateAt(a), "advice changes no state (collapsed=" + collapsed + ")");
            // A range that holds no whole huge page is left alone.
            os.sysHugePage(a + PAGE, 2 * PAGE);
        } finally {
            os.sysFree(a, len);
        }
    }

    // ───────────── accounting and logging ─────────────

    @Test
    void countersFollowEveryTransitionByPurpose() {
        long h = os.sysReserve(0, 16 * PAGE, Purpose.HEAP);
        os.sysMap(h, 8 * PAGE);
        os.sysUsed(h, 4 * PAGE);
        assertEquals(8 * PAGE, os.bytes(MemState.RESERVED, Purpose.HEAP));
        assertEquals(4 * PAGE, os.bytes(MemState.PREPARED, Purpose.HEAP));
        assertEquals(4 * PAGE, os.bytes(MemState.READY, Purpose.HEAP));
        assertEquals(LEN + 2 * PAGE, os.bytes(MemState.RESERVED, Purpose.OTHER));
        os.checkInvariants();
        os.sysFree(h, 16 * PAGE);
        assertEquals(0, os.bytes(MemState.READY, Purpose.HEAP) + os.bytes(MemState.PREPARED, Purpose.HEAP)
                + os.bytes(MemState.RESERVED, Purpose.HEAP));
    }

    /**
     * The OS backend is the one {@code gomem.backend} asks for, and {@code auto} takes Panama from
     * JDK 25 (the jar's part that has it) and JNI below: so this suite, run once per backend on
     * JDK 25 and once on JDK 17, says which one it checked.
     */
    @Test
    void theBackendIsTheOneAsked() {
        String asked = System.getProperty("gomem.backend", "auto");
        String expect = asked.equals("auto") ? (Runtime.version().feature() >= 25 ? "panama" : "jni") : asked;
        assertEquals(expect, OsMemory.backend(), "JDK " + Runtime.version().feature() + ", gomem.backend=" + asked);
    }

    /** The demo's stderr with {@code gomem.debug} set to {@code debug}; fails unless the demo passed. */
    static String demoStderr(String debug) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Dgomem.debug=" + debug,
                "-cp", System.getProperty("java.class.path"), "io.gomem.demo.Demo"));
        Path errFile = Files.createTempFile("gomem-demo", ".err");
        Process p = new ProcessBuilder(cmd).redirectError(errFile.toFile()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        String err = Files.readString(errFile);
        Files.delete(errFile);
        assertEquals(0, p.exitValue(), "demo failed:\n" + out + err);
        assertTrue(out.contains("demo: all checks passed"), out);
        return err;
    }

    /**
     * Level 1: a line per region-level transition, and the per-span calls (sysUsed, sysUnused)
     * coalesced into one line per run, with their count and bytes; failures on a line of their own.
     */
    @Test
    void debugSysCoalescesPerSpanCalls() throws Exception {
        String err = demoStderr("sys");
        for (String call : List.of("sysReserve", "sysMap", "sysFault", "sysFree", "sysAlloc")) {
            assertTrue(err.lines().anyMatch(l -> l.startsWith("gomem: " + call + " [0x") && l.endsWith(": ok")),
                    call + " line missing in:\n" + err);
        }
        for (String call : List.of("sysUsed", "sysUnused")) {
            assertTrue(err.lines().anyMatch(l -> l.matches("gomem: " + call + " x\\d+, .* -> .* \\(coalesced.*")),
                    call + " coalesced line missing in:\n" + err);
            assertTrue(err.lines().noneMatch(l -> l.startsWith("gomem: " + call + " [0x") && l.endsWith(": ok")),
                    call + " printed per call at level 1:\n" + err);
        }
        assertTrue(err.contains("Ready -> Prepared (coalesced"), err);
        assertTrue(err.lines().anyMatch(l -> l.startsWith("gomem: sysUsed") && l.endsWith("refused")), err);
        long lines = err.lines().filter(l -> l.startsWith("gomem: ")).count();
        long each = demoStderr("sys=2").lines().filter(l -> l.startsWith("gomem: ")).count();
        assertTrue(lines < each, "coalescing prints fewer lines: " + lines + " vs " + each);
    }

    /** Level 2 (GODEBUG-style): every call on a line of its own. */
    @Test
    void debugSysLevelTwoPrintsOneLinePerCall() throws Exception {
        String err = demoStderr("sys=2");
        for (String call : List.of("sysReserve", "sysMap", "sysUsed", "sysUnused", "sysFault", "sysFree", "sysAlloc")) {
            assertTrue(err.lines().anyMatch(l -> l.startsWith("gomem: " + call + " [0x") && l.endsWith(": ok")),
                    call + " line missing in:\n" + err);
        }
        assertTrue(err.contains("Reserved -> Prepared: ok") && err.contains("Ready -> Prepared: ok"), err);
        assertTrue(err.lines().anyMatch(l -> l.startsWith("gomem: sysUsed") && l.endsWith("refused")), err);
    }

    @Test
    void withoutTheSwitchNothingIsPrinted() throws Exception {
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), "io.gomem.demo.Demo");
        Path errFile = Files.createTempFile("gomem-demo", ".err");
        Process p = new ProcessBuilder(cmd).redirectError(errFile.toFile()).start();
        p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        String err = Files.readString(errFile);
        Files.delete(errFile);
        assertEquals(0, p.exitValue());
        assertFalse(err.contains("gomem: "), err);
    }
}
