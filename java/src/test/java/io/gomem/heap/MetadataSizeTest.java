package io.gomem.heap;

import io.gomem.os.OsMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.openjdk.jol.info.ClassLayout;
import org.openjdk.jol.info.GraphLayout;
import org.openjdk.jol.vm.VM;

import java.lang.reflect.Array;
import java.lang.reflect.Field;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Metadata}'s figures against JOL's measurement of the same objects. JOL sizes each object
 * with the VM's own {@code Instrumentation.getObjectSize} (the test JVM allows the self-attach it
 * needs: see java/pom.xml) and walks references for a graph's total, so a record that gains a
 * field or an array, or a VM layout the model does not know, fails here.
 *
 * <p>Prints the figures (grep the output for "metadata:") for BENCHMARKS.md.
 */
class MetadataSizeTest {
    private final Malloc core = Malloc.create(new OsMemory(), Malloc.Config.of(1));

    MetadataSizeTest() {
        Background.unregister(core);
    }

    @AfterEach
    void close() {
        core.close();
    }

    @BeforeAll
    static void describe() {
        System.out.println("metadata: " + Metadata.layout());
        System.out.println("metadata: JOL " + VM.current().details().replace("\n", "\nmetadata: JOL "));
    }

    /** Bytes of everything reachable from {@code roots}, per JOL. */
    private static long jol(Object... roots) {
        return GraphLayout.parseInstance(roots).totalSize();
    }

    /** JOL's size of span {@code s}'s own graph: its link to the cache holding it (counted as a cache) cut for the walk. */
    private static long jol(MSpan s) {
        Object by = s.cachedBy;
        s.cachedBy = null; // the heap is this test's alone: nobody reads it meanwhile
        try {
            return GraphLayout.parseInstance(s).totalSize();
        } finally {
            s.cachedBy = by;
        }
    }

    /** Bytes of {@code o} alone, per JOL (the VM's getObjectSize). */
    private static long shallow(Object o) {
        return VM.current().sizeOf(o);
    }

    private static void report(String what, long bytes) {
        System.out.printf("metadata: %-44s %,10d B%n", what, bytes);
    }

    // ───────────────────────────── the model itself ─────────────────────────────

    @Test
    void layoutIsReadFromTheVm() {
        Metadata.Layout l = Metadata.layout();
        assertTrue(l.fromVm(), "the VM options were read, not assumed: " + l);
        assertEquals(VM.current().objectAlignment(), l.objectAlignment());
        assertEquals(VM.current().sizeOfField("java.lang.Object"), l.referenceBytes(), "reference size");
        assertEquals(VM.current().objectHeaderSize(), l.instanceHeaderBytes(), "object header");
        assertEquals(VM.current().arrayHeaderSize(), l.arrayHeaderBytes(), "array header");
    }

    @Test
    void arraysOfEveryElementType() {
        for (Class<?> c : List.of(boolean.class, byte.class, char.class, short.class, int.class, float.class,
                long.class, double.class, Object.class, MSpan.class, long[].class)) {
            for (int n : new int[] {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65, 137, 512, 8192}) {
                assertEquals(shallow(Array.newInstance(c, n)), Metadata.arrayBytes(c, n), c + "[" + n + "]");
            }
        }
    }

    // Field shapes that exercise the layout model: holes after the header, a superclass's holes and
    // tail padding filled by subclass fields, references after primitives.
    static class Empty {
    }

    static class ThreeBytes {
        byte a;
        byte b;
        byte c;
    }

    static class LongByte {
        long a;
        byte b;
    }

    static class FillsParent extends LongByte {
        int c;
        short d;
        byte e;
        Object f;
    }

    static class Deeper extends FillsParent {
        boolean g;
        double h;
        char i;
        Object j;
    }

    static class OneByte {
        byte x;
    }

    static class LongAfterByte extends OneByte {
        long y;
        int z;
    }

    static class Refs {
        Object a;
        Object b;
        Object c;
        long d;
        int[] e;
    }

    static class IntsOnly extends Refs {
        int f;
        int g;
        int h;
    }

    @Test
    void instanceSizesOfVariousShapes() {
        for (Object o : List.of(new Object(), new Empty(), new ThreeBytes(), new LongByte(), new FillsParent(), new Deeper(),
                new OneByte(), new LongAfterByte(), new Refs(), new IntsOnly(), "s", Long.valueOf(1))) {
            assertEquals(shallow(o), Metadata.instanceBytes(o.getClass()), o.getClass().getName());
        }
    }

    @Test
    void instanceSizesOfTheHeapsClasses() {
        for (Class<?> c : List.of(MSpan.class, MCache.class, MCacheOwnerPad.class, MCacheOwner.class, MCentral.class,
                MHeap.class, MHeap.HeapArena.class, Malloc.class, Procs.class, MStats.class, PageAlloc.class, PageAlloc.Sparse.class,
                Scavenger.class, SpinLock.class)) {
            assertEquals(ClassLayout.parseClass(c).instanceSize(), Metadata.instanceBytes(c), c.getName());
        }
    }

    // ───────────────────────────── the heap's records ─────────────────────────────

    /** The span of {@code addr}, checked to refer to no other span (so its JOL graph is itself). */
    private MSpan spanOf(long addr) {
        MSpan s = core.heap.spanOf(addr);
        assertNotNull(s);
        assertNull(s.next, "a cached span links no list");
        assertNull(s.prev);
        assertNull(s.notifiedNext);
        return s;
    }

    @Test
    void smallSpan() {
        MSpan s = spanOf(core.allocate(64));
        assertEquals(MSpan.STATE_SMALL, s.state);
        assertNull(s.tinyMasks);
        assertEquals(jol(s), Metadata.spanBytes(s));
        assertEquals(jol(s), Metadata.spanBytes());
        report("MSpan, small (64 B class, 128 slots)", Metadata.spanBytes(s));
        report("  of which the MSpan object", Metadata.instanceBytes(MSpan.class));
        report("  allocBits long[" + s.allocBits.length + "]", shallow(s.allocBits));
        report("  freeBits long[" + s.freeBits.length + "]", shallow(s.freeBits));
    }

    @Test
    void oneObjectSpan() {
        MSpan s = spanOf(core.allocate(SizeClasses.PAGE_SIZE));
        assertEquals(1, s.nelems, "8 KiB class: one object per one-page span");
        assertEquals(jol(s), Metadata.spanBytes(s));
        report("MSpan, small (8 KiB class, 1 slot)", Metadata.spanBytes(s));
    }

    @Test
    void tinySpan() {
        MSpan s = spanOf(core.allocate(8));
        assertEquals(SizeClasses.TINY_SPAN_CLASS, s.spanClass);
        assertNotNull(s.tinyMasks);
        assertEquals(jol(s), Metadata.spanBytes(s));
        assertEquals(Metadata.arrayBytes(int.class, s.nelems), Metadata.spanBytes(s) - Metadata.spanBytes());
        report("MSpan, tiny (" + s.nelems + " blocks, with tinyMasks)", Metadata.spanBytes(s));
        report("  tinyMasks int[" + s.tinyMasks.length + "]", shallow(s.tinyMasks));
    }

    @Test
    void largeSpan() {
        MSpan s = spanOf(core.allocate(SizeClasses.MAX_SMALL_SIZE + 1));
        assertEquals(MSpan.STATE_LARGE, s.state);
        assertEquals(jol(s), Metadata.spanBytes(s));
        assertEquals(Metadata.spanBytes(), Metadata.spanBytes(s), "a large span carries the same bitmaps, unused");
        report("MSpan, large (" + s.npages + " pages)", Metadata.spanBytes(s));
    }

    @Test
    void cache() throws ReflectiveOperationException {
        // A cache of no heap, so that JOL's walk stops at the cache: its graph is the cache, its
        // arrays, and the shared EMPTY span every class slot starts with.
        MCache fresh = new MCache(null, null, null, 0);
        assertEquals(jol(fresh) - jol(MCache.EMPTY), Metadata.cacheBytes(fresh));
        assertEquals(jol(fresh) - jol(MCache.EMPTY), Metadata.cacheBytes());
        // A working cache, object by object (its graph reaches the whole heap).
        core.allocate(64);
        MCache c = core.procs.slots[0];
        Field kept = MCache.class.getDeclaredField("largeKept");
        kept.setAccessible(true);
        long perObject = shallow(c) + shallow(c.alloc) + shallow(c.allocs) + shallow(c.sweptInPlace) + shallow(kept.get(c));
        assertEquals(perObject, Metadata.cacheBytes(c));
        report("MCache (object and its 4 arrays)", Metadata.cacheBytes(c));
        report("  of which the MCache object", shallow(c));
    }

    @Test
    void arena() {
        MHeap.HeapArena a = new MHeap.HeapArena(0);
        assertEquals(jol(a), Metadata.arenaBytes(a));
        assertEquals(jol(a), Metadata.arenaBytes());
        report("MHeap.HeapArena (spans table of " + a.spans.length + " pages)", Metadata.arenaBytes(a));
    }

    @Test
    void central() {
        // A central of no heap, so that JOL's walk stops at it: the object, its lock, its deque.
        MCentral c = new MCentral(null, null, SizeClasses.spanClass(5, true), 5);
        assertEquals(jol(c), Metadata.centralBytes());
        report("MCentral (lock, empty partial deque)", Metadata.centralBytes());
        // The central of a working heap holds the same, plus spans (counted as spans).
        MCentral used = core.centrals[0][SizeClasses.spanClass(5, true)];
        assertEquals(shallow(used), Metadata.instanceBytes(MCentral.class));
    }

    @Test
    void flatSpanTable() {
        core.allocate(64);
        assertTrue(core.flat.length > 0);
        MSpan[] flat = core.flat;
        assertEquals(shallow(flat), Metadata.spanTableBytes(flat));
        report("flat spans table (" + flat.length + " pages)", Metadata.spanTableBytes(flat));
    }

    @Test
    void pageAllocator() {
        // A page allocator without a lock, so that its graph is its own.
        PageAlloc p = new PageAlloc();
        assertEquals(jol(p), Metadata.pageAllocBytes(p));
        report("PageAlloc, empty", Metadata.pageAllocBytes(p));
        long base = 0x00c0L << 32;
        long grown = 0;
        double lastPerChunk = 0;
        for (long chunks : new long[] {1, 31, 480, 512, 15360}) {
            long before = Metadata.pageAllocBytes(p);
            p.grow(base + grown * PageAlloc.CHUNK_BYTES, chunks * PageAlloc.CHUNK_BYTES);
            grown += chunks;
            long bytes = Metadata.pageAllocBytes(p);
            assertEquals(jol(p), bytes, grown + " chunks");
            lastPerChunk = (double) (bytes - before) / chunks;
            report("PageAlloc, " + grown + " chunks (" + (grown * 4) + " MiB)", bytes);
            report("  per chunk of the last " + chunks, (bytes - before) / chunks);
        }
        // The amortized figure: what the last 15 360 chunks (60 GiB) cost each, within 2 bytes
        // (they found the higher summary levels' leaf pages already there; the figure counts a share).
        assertTrue(Metadata.chunkBytes() >= lastPerChunk && Metadata.chunkBytes() < lastPerChunk + 2,
                Metadata.chunkBytes() + " vs " + lastPerChunk + " measured per chunk");
        // A second range far away: new middle and leaf pages at every level.
        p.grow(base << 4, PageAlloc.CHUNK_BYTES);
        assertEquals(jol(p), Metadata.pageAllocBytes(p));
        report("PageAlloc, + 1 chunk 12 TiB higher", Metadata.pageAllocBytes(p));
        report("Metadata.chunkBytes() (per chunk, amortized)", Metadata.chunkBytes());

        // The heap's own page allocator: its graph less the heap lock it was given.
        core.allocate(64);
        PageAlloc real = core.heap.pageAlloc;
        assertEquals(jol(real) - jol(core.heap.lock), Metadata.pageAllocBytes(real));
    }
}
