package io.gomem.heap;

import java.lang.management.ManagementFactory;
import java.lang.management.PlatformManagedObject;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Java-heap bytes of the heap's metadata records, computed from the object layout of the running
 * JVM rather than estimated: a span record with its bitmaps, a P cache with its arrays, a span
 * class's central, an arena's spans table, the flat spans table, the page allocator's bitmaps and
 * summaries. Each record's method names the objects it counts; what they point to that is counted
 * elsewhere (spans from a cache, the heap) is not counted again.
 *
 * <h2>How the sizes are computed</h2>
 * An object's size is its header, its fields as HotSpot lays them out, rounded up to the object
 * alignment; an array's is its header (aligned to 8 for {@code long}/{@code double} elements, and
 * for references when they are not compressed) plus its elements, rounded up the same way. The
 * parameters are read once from the running VM's options through its
 * {@code com.sun.management.HotSpotDiagnosticMXBean} ({@code UseCompressedOops},
 * {@code UseCompressedClassPointers}, {@code UseCompactObjectHeaders},
 * {@code ObjectAlignmentInBytes}), reached by reflection since this module requires only
 * {@code java.management}; if that bean is absent (an image without {@code jdk.management}),
 * the 64-bit defaults are assumed (compressed references and class pointers, 12-byte headers,
 * 8-byte alignment) and {@link Layout#fromVm()} says so. Field
 * placement follows HotSpot's field layout (JDK 15 and later, {@code FieldLayoutBuilder}):
 * primitive fields largest first, then references, each into the smallest hole that fits,
 * including holes and tail padding left by superclasses. The model knows no {@code @Contended}
 * and no fields the VM injects (none of the heap's classes has either). No {@code Unsafe}.
 *
 * <p>{@code MetadataSizeTest} checks every figure against JOL's measurement (the VM's own
 * {@code Instrumentation.getObjectSize}, and JOL's walk of everything a record reaches). A field
 * added to a record is counted without a change here; an array or object a record comes to own
 * must be added to its method, and the test fails until it is, as it does on a VM layout the model
 * does not know. Checked with compressed and plain references, compact object headers, no
 * compressed class pointers, and 16- and 32-byte alignment (JDK 25).
 *
 * <h2>Cost</h2>
 * The first call reads the VM options (40 to 60 ms in a fresh JVM, measured: the platform
 * MXBean machinery loads), and a class's first size computes its layout (10 to 20 ms for the
 * first, reflection warming up); both are cached. Call {@link #layout()} where a delay does not
 * matter (when the heap is built) rather than first inside a stop-the-world. After that each
 * method is a few multiplications, except {@link #pageAllocBytes} and {@link #sparseBytes}, which
 * walk their tables' top and middle arrays (tens of microseconds). None allocates after the first
 * call per class, none takes a lock; the caller provides whatever guard the record's fields need.
 */
final class Metadata {
    private Metadata() {
    }

    /**
     * The object layout parameters of a HotSpot VM.
     *
     * @param compressedOops          references are 4 bytes (else 8)
     * @param compressedClassPointers the class word is 4 bytes (else 8); ignored with compact headers
     * @param compactHeaders          {@code -XX:+UseCompactObjectHeaders}: an 8-byte header
     * @param objectAlignment         {@code ObjectAlignmentInBytes}: every object's size is a multiple of it
     * @param fromVm                  true if read from the running VM, false if assumed (no HotSpot
     *                                diagnostic bean)
     */
    record Layout(boolean compressedOops, boolean compressedClassPointers, boolean compactHeaders,
                  int objectAlignment, boolean fromVm) {

        /** The 64-bit defaults (heaps under 32 GiB): compressed references and class pointers, 8-byte alignment. */
        static final Layout DEFAULT = new Layout(true, true, false, 8, false);

        /** Bytes of a reference field or array element. */
        int referenceBytes() {
            return compressedOops ? 4 : 8;
        }

        /** Bytes before an object's first field: mark word and class word. */
        int instanceHeaderBytes() {
            return compactHeaders ? 8 : compressedClassPointers ? 12 : 16;
        }

        /** Bytes of an array's header: the object header and the 4-byte length. */
        int arrayHeaderBytes() {
            return instanceHeaderBytes() + 4;
        }

        /** Offset of an array's first element. */
        int arrayBaseOffset(Class<?> componentType) {
            int h = arrayHeaderBytes();
            boolean eightAligned = componentType == long.class || componentType == double.class
                    || (!componentType.isPrimitive() && !compressedOops);
            return eightAligned ? alignUp(h, 8) : h;
        }

        /** Bytes of one element or field of {@code type}. */
        int slotBytes(Class<?> type) {
            if (!type.isPrimitive()) {
                return referenceBytes();
            }
            if (type == long.class || type == double.class) {
                return 8;
            }
            if (type == int.class || type == float.class) {
                return 4;
            }
            if (type == short.class || type == char.class) {
                return 2;
            }
            if (type == byte.class || type == boolean.class) {
                return 1;
            }
            throw new IllegalArgumentException("no field or element is of type " + type);
        }

        @Override
        public String toString() {
            return (compressedOops ? "compressed" : "8-byte") + " references, " + instanceHeaderBytes()
                    + "-byte object headers, " + arrayHeaderBytes() + "-byte array headers, " + objectAlignment
                    + "-byte alignment (" + (fromVm ? "read from the VM's options" : "assumed: no HotSpot diagnostic bean") + ")";
        }
    }

    private static final class LayoutHolder {
        static final Layout LAYOUT = readLayout();
    }

    /** The layout parameters every figure here uses (read from the VM on first use). */
    static Layout layout() {
        return LayoutHolder.LAYOUT;
    }

    private static Layout readLayout() {
        Object bean;
        Method getVmOption;
        Method getValue;
        try {
            // HotSpotDiagnosticMXBean lives in jdk.management, which this module does not require:
            // reach it by name (reflection reads any module), and fall back where it is absent.
            @SuppressWarnings("unchecked")
            Class<? extends PlatformManagedObject> type = (Class<? extends PlatformManagedObject>)
                    Class.forName("com.sun.management.HotSpotDiagnosticMXBean");
            bean = ManagementFactory.getPlatformMXBean(type);
            getVmOption = type.getMethod("getVMOption", String.class);
            getValue = Class.forName("com.sun.management.VMOption").getMethod("getValue");
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            return Layout.DEFAULT;
        }
        if (bean == null) {
            return Layout.DEFAULT;
        }
        Layout d = Layout.DEFAULT;
        String oops = option(bean, getVmOption, getValue, "UseCompressedOops");
        String ccp = option(bean, getVmOption, getValue, "UseCompressedClassPointers");
        String compact = option(bean, getVmOption, getValue, "UseCompactObjectHeaders");
        String align = option(bean, getVmOption, getValue, "ObjectAlignmentInBytes");
        if (oops == null || align == null) {
            return d; // a VM without the options this model is built on
        }
        return new Layout(Boolean.parseBoolean(oops),
                ccp == null ? d.compressedClassPointers() : Boolean.parseBoolean(ccp), // gone once always on
                compact != null && Boolean.parseBoolean(compact), // absent before JDK 24
                Integer.parseInt(align), true);
    }

    /** The value of VM option {@code name}, or null if the VM has no such option. */
    private static String option(Object bean, Method getVmOption, Method getValue, String name) {
        try {
            return String.valueOf(getValue.invoke(getVmOption.invoke(bean, name)));
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null; // IllegalArgumentException (no such option), wrapped in an InvocationTargetException
        }
    }

    // ───────────────────────────── the heap's records ─────────────────────────────

    /**
     * Java-heap bytes of span {@code s}: the {@link MSpan} object, its alloc bits and free marks
     * (allocated with every span, small or large), and its tiny masks if it has some (a span that
     * once served the tiny class keeps them when it is pooled and reused). Read {@code s.tinyMasks}
     * under the guard that keeps the span from being reinitialised (the heap lock, or with the
     * world stopped).
     */
    static long spanBytes(MSpan s) {
        long n = instanceBytes(MSpan.class) + arrayBytes(long.class, s.allocBits.length)
                + arrayBytes(long.class, s.freeBits.length) + arrayBytes(long.class, s.localBits.length);
        int[] t = s.tinyMasks;
        return t == null ? n : n + arrayBytes(int.class, t.length);
    }

    /**
     * Java-heap bytes of a span without tiny masks: what every span costs at least, in constant
     * time (the bitmaps' lengths are fixed). A tiny span costs {@code arrayBytes(int.class, nelems)}
     * more (2 064 bytes for 512 slots with compressed headers).
     */
    static long spanBytes() {
        return instanceBytes(MSpan.class) + 2 * arrayBytes(long.class, SizeClasses.MAX_OBJECTS_PER_SPAN / 64)
                + arrayBytes(long.class, MSpan.FREE_PAD + SizeClasses.MAX_OBJECTS_PER_SPAN / 64 + MSpan.FREE_PAD);
    }

    /**
     * Java-heap bytes of P cache {@code c}: the {@link MCache} object (with its padded superclasses)
     * and the arrays it owns: current span, uncounted allocations and uncounted in-place sweeps
     * per span class, and its kept-large-span lists ({@code largeKept}, {@code LARGE_MAX_PAGES + 1}
     * entries, fixed at construction). Not the spans it points to (counted as spans), the heap,
     * its centrals, or its owner thread.
     */
    static long cacheBytes(MCache c) {
        return instanceBytes(MCache.class) + arrayBytes(MSpan.class, c.alloc.length) + arrayBytes(long.class, c.allocs.length)
                + arrayBytes(long.class, c.sweptInPlace.length) + arrayBytes(MSpan.class, MCache.LARGE_MAX_PAGES + 1);
    }

    /**
     * {@link #cacheBytes(MCache)} of a cache as built: every cache has the same arrays, of lengths
     * fixed by the size-class table, so this is every cache's figure.
     */
    static long cacheBytes() {
        int classes = SizeClasses.NUM_SPAN_CLASSES + 1;
        return instanceBytes(MCache.class) + arrayBytes(MSpan.class, classes) + 2 * arrayBytes(long.class, classes)
                + arrayBytes(MSpan.class, MCache.LARGE_MAX_PAGES + 1);
    }

    /**
     * Java-heap bytes of a span class's {@link MCentral} with no partial span beyond the sixteen an
     * empty {@link java.util.ArrayDeque} holds: the object, its lock (a {@link SpinLock} and its
     * AQS sync object, no waiter queued), the condition {@code sweepAll} waits on, and its
     * partial-span deque with its 17-slot array (JDK 9 and later). The deque's array grows with
     * the partial spans, by a reference each (not counted here: the array is private to
     * java.base). Not the spans.
     */
    static long centralBytes() {
        return instanceBytes(MCentral.class) + instanceBytes(SpinLock.class) + instanceBytes(SYNC)
                + instanceBytes(java.util.concurrent.locks.AbstractQueuedSynchronizer.ConditionObject.class) // sweepAll's wait
                + instanceBytes(java.util.ArrayDeque.class) + arrayBytes(Object.class, 16 + 1);
    }

    /** ReentrantLock's nonfair sync, the object every SpinLock holds. */
    private static final Class<?> SYNC = syncClass();

    private static Class<?> syncClass() {
        try {
            return Class.forName("java.util.concurrent.locks.ReentrantLock$NonfairSync");
        } catch (ClassNotFoundException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /**
     * Java-heap bytes of arena {@code a}'s metadata: the {@link MHeap.HeapArena} object and its
     * spans table (one reference per 8 KiB page: 8 192 for a 64 MiB arena). Not the spans.
     */
    static long arenaBytes(MHeap.HeapArena a) {
        return instanceBytes(MHeap.HeapArena.class) + arrayBytes(MSpan.class, a.spans.length);
    }

    /** {@link #arenaBytes(MHeap.HeapArena)} of every arena: its spans table has one entry per page. */
    static long arenaBytes() {
        return instanceBytes(MHeap.HeapArena.class) + arrayBytes(MSpan.class, MHeap.PAGES_PER_ARENA);
    }

    /**
     * Java-heap bytes the page allocator adds per 4 MiB chunk as a contiguous heap grows, rounded
     * up: the chunk's bitmaps (16 longs) and its share of the summary entries above it (one long
     * at the leaf level, an eighth of one at the next, ...), with their share of the 512-long leaf
     * pages' headers and of the middle arrays. An estimate for a heap of many chunks; the exact
     * figure of a page allocator, with its fixed top arrays (about 18 KiB) and whole leaf pages,
     * is {@link #pageAllocBytes}.
     */
    static long chunkBytes() {
        int leafLongs = 1 << PageAlloc.Sparse.LEAF_BITS;
        double perLong = (double) arrayBytes(long.class, leafLongs) / leafLongs;
        double bitmapLongs = 2 * PallocBits.WORDS;
        long longsPerMid = 1L << (PageAlloc.Sparse.LEAF_BITS + PageAlloc.Sparse.MID_BITS); // a middle array's leaves
        double bytes = bitmapLongs * perLong // the chunk's bitmaps
                + bitmapLongs * arrayBytes(long[].class, 1 << PageAlloc.Sparse.MID_BITS) / longsPerMid; // its middle array's share
        for (int l = 0; l < PageAlloc.LEVELS; l++) {
            bytes += perLong / (1L << (PageAlloc.LEVEL_SHIFT[l] - PageAlloc.CHUNK_SHIFT)); // one summary per 8^(LEAF-l) chunks
        }
        return (long) Math.ceil(bytes);
    }

    /**
     * Java-heap bytes of a flat spans table {@code flat} (one reference per 8 KiB page from the
     * heap's first arena to its newest, up to 64 GiB of address space): the array alone. It takes
     * the array rather than its holder so that it does not depend on which object publishes the
     * table (the heap's entry point keeps it in a volatile field: read it once and pass it).
     */
    static long spanTableBytes(MSpan[] flat) {
        return arrayBytes(MSpan.class, flat.length);
    }

    /**
     * Java-heap bytes of a sparse array of the page allocator: the {@link PageAlloc.Sparse} object,
     * its top array, and the middle arrays and 512-long leaf pages created so far (they are
     * never dropped). Walks the top and middle arrays. Heap lock held (they grow under it).
     */
    static long sparseBytes(PageAlloc.Sparse s) {
        long[][][] top = s.top;
        long n = instanceBytes(PageAlloc.Sparse.class) + arrayBytes(long[][].class, top.length);
        for (long[][] mid : top) {
            if (mid != null) {
                n += arrayBytes(long[].class, mid.length);
                for (long[] leaf : mid) {
                    if (leaf != null) {
                        n += arrayBytes(long.class, leaf.length);
                    }
                }
            }
        }
        return n;
    }

    /**
     * Java-heap bytes of page allocator {@code p}: the {@link PageAlloc} object, its five summary
     * levels and its chunk bitmaps (sparse arrays: see {@link #sparseBytes}), and its grown-range
     * and claim arrays; not the heap lock it is given. This is not a per-chunk figure: the chunk
     * bitmaps (16 longs per 4 MiB chunk) and leaf summaries (one long per chunk) come in 4 KiB
     * leaf pages, for 32 and 512 chunks respectively, under top arrays allocated up front
     * (measured with compressed references: 18 KiB empty, 54 KiB with one chunk, then 128 to
     * 137 bytes per chunk as a contiguous heap grows).
     *
     * <p>Reads PageAlloc's fields by reflection (same module, so no opening is needed), so that
     * PageAlloc need not change; a field of a type this method does not know throws
     * IllegalStateException rather than be left out. Heap lock held.
     */
    static long pageAllocBytes(PageAlloc p) {
        long n = instanceBytes(PageAlloc.class);
        for (Field f : PageAllocFields.FIELDS) {
            Object v;
            try {
                v = f.get(p);
            } catch (IllegalAccessException e) {
                throw new IllegalStateException("Metadata cannot read PageAlloc." + f.getName(), e);
            }
            if (v == null || v instanceof ReentrantLock) {
                continue; // the heap's lock is the heap's, not the page allocator's
            }
            if (v instanceof long[] a) {
                n += arrayBytes(long.class, a.length);
            } else if (v instanceof PageAlloc.Sparse s) {
                n += sparseBytes(s);
            } else if (v instanceof PageAlloc.Sparse[] ss) {
                n += arrayBytes(PageAlloc.Sparse.class, ss.length);
                for (PageAlloc.Sparse s : ss) {
                    n += s == null ? 0 : sparseBytes(s);
                }
            } else {
                throw new IllegalStateException("Metadata.pageAllocBytes does not know field PageAlloc." + f.getName()
                        + " of type " + f.getType().getName() + ": teach it, and MetadataSizeTest checks it");
            }
        }
        return n;
    }

    /** PageAlloc's reference fields, made readable once. */
    private static final class PageAllocFields {
        static final Field[] FIELDS = referenceFields(PageAlloc.class);

        private static Field[] referenceFields(Class<?> c) {
            List<Field> out = new ArrayList<>();
            for (Field f : c.getDeclaredFields()) {
                if (!Modifier.isStatic(f.getModifiers()) && !f.getType().isPrimitive()) {
                    f.setAccessible(true);
                    out.add(f);
                }
            }
            return out.toArray(new Field[0]);
        }
    }

    // ───────────────────────────── general ─────────────────────────────

    /**
     * Bytes of an array of {@code length} elements of {@code componentType} (a primitive class, or
     * any class for an array of references): header, elements, rounded up to the object alignment.
     */
    static long arrayBytes(Class<?> componentType, long length) {
        if (length < 0 || componentType == void.class) {
            throw new IllegalArgumentException("array of " + length + " " + componentType);
        }
        Layout l = layout();
        return alignUp(l.arrayBaseOffset(componentType) + length * l.slotBytes(componentType), l.objectAlignment());
    }

    /**
     * Bytes of one instance of class {@code c} (its header and every instance field, its
     * superclasses' included, as HotSpot places them), not counting what its fields refer to.
     * Computed once per class.
     *
     * @throws IllegalArgumentException for an array class (see {@link #arrayBytes}), an interface
     *                                  or a primitive class
     */
    static long instanceBytes(Class<?> c) {
        if (c.isArray() || c.isInterface() || c.isPrimitive()) {
            throw new IllegalArgumentException(c + " has no instances of its own layout; use arrayBytes for arrays");
        }
        return INSTANCE_BYTES.get(c);
    }

    private static final ClassValue<Long> INSTANCE_BYTES = new ClassValue<>() {
        @Override
        protected Long computeValue(Class<?> c) {
            return (long) alignUp(alignUp(FIELD_LAYOUT.get(c).end, 8), layout().objectAlignment());
        }
    };

    private static final ClassValue<FieldLayout> FIELD_LAYOUT = new ClassValue<>() {
        @Override
        protected FieldLayout computeValue(Class<?> c) {
            Class<?> sup = c.getSuperclass();
            return FieldLayout.of(c, sup == null ? null : get(sup));
        }
    };

    /**
     * Where the instance fields of a class lie: a model of HotSpot's {@code FieldLayoutBuilder}
     * ({@code compute_regular_layout}, without {@code @Contended}).
     */
    private static final class FieldLayout {
        /** Offset and size of every instance field, inherited ones included, by offset. */
        final List<int[]> fields;
        /** First byte past the last field (past the header if there is none). */
        final int end;

        private FieldLayout(List<int[]> fields, int end) {
            this.fields = fields;
            this.end = end;
        }

        /** A block of the layout under construction: a field, the header, or a hole. */
        private static final class Block {
            int offset;
            int size;
            final boolean empty;

            Block(int offset, int size, boolean empty) {
                this.offset = offset;
                this.size = size;
                this.empty = empty;
            }

            boolean fits(int size, int alignment) {
                int adjust = offset % alignment == 0 ? 0 : alignment - offset % alignment;
                return this.size >= size + adjust;
            }
        }

        static FieldLayout of(Class<?> c, FieldLayout sup) {
            Layout l = layout();
            // The superclass's layout (reconstruct_layout, fill_holes): the header, its fields at
            // their offsets, the holes between them, and an open-ended hole after the last field.
            List<Block> blocks = new ArrayList<>();
            blocks.add(new Block(0, l.instanceHeaderBytes(), false));
            int at = l.instanceHeaderBytes();
            if (sup != null) {
                for (int[] f : sup.fields) {
                    if (f[0] > at) {
                        blocks.add(new Block(at, f[0] - at, true));
                    }
                    blocks.add(new Block(f[0], f[1], false));
                    at = f[0] + f[1];
                }
            }
            blocks.add(new Block(at, Integer.MAX_VALUE, true));

            // This class's fields: primitives largest first (a stable sort, as HotSpot's ties go by
            // field index), then references in declaration order.
            List<Integer> primitives = new ArrayList<>();
            List<Integer> references = new ArrayList<>();
            for (Field f : c.getDeclaredFields()) {
                if (Modifier.isStatic(f.getModifiers())) {
                    continue;
                }
                (f.getType().isPrimitive() ? primitives : references).add(l.slotBytes(f.getType()));
            }
            primitives.sort(Comparator.reverseOrder());
            List<int[]> placed = new ArrayList<>(sup == null ? List.of() : sup.fields);
            add(blocks, primitives, placed);
            add(blocks, references, placed);
            placed.sort(Comparator.comparingInt(f -> f[0]));
            return new FieldLayout(List.copyOf(placed), blocks.get(blocks.size() - 1).offset);
        }

        /**
         * FieldLayout::add: each field (alignment = size) into the smallest hole that fits it,
         * searching from the last hole down to (not including) the header; if none fits, at the
         * end. A field of the same size as the previous one skips the search when that one failed.
         */
        private static void add(List<Block> blocks, List<Integer> sizes, List<int[]> placed) {
            boolean lastFound = false;
            int lastSize = 0;
            for (int size : sizes) {
                int tail = blocks.size() - 1;
                int candidate = -1;
                if (size == lastSize && !lastFound) {
                    candidate = tail;
                } else {
                    lastSize = size;
                    lastFound = true;
                    for (int i = tail - 1; i > 0; i--) {
                        Block b = blocks.get(i);
                        if (b.empty && b.fits(size, size) && (candidate < 0 || b.size < blocks.get(candidate).size)) {
                            candidate = i;
                        }
                    }
                    if (candidate < 0) {
                        candidate = tail;
                        lastFound = false;
                    }
                }
                Block slot = blocks.get(candidate);
                if (slot.offset % size != 0) { // insert_field_block: a hole for the alignment first
                    int adjust = size - slot.offset % size;
                    blocks.add(candidate++, new Block(slot.offset, adjust, true));
                    slot.offset += adjust;
                    slot.size -= adjust;
                }
                blocks.add(candidate, new Block(slot.offset, size, false));
                placed.add(new int[] {slot.offset, size});
                slot.offset += size;
                slot.size -= size;
                if (slot.size == 0) {
                    blocks.remove(candidate + 1);
                }
            }
        }
    }

    private static long alignUp(long v, long alignment) {
        return (v + alignment - 1) & -alignment;
    }

    private static int alignUp(int v, int alignment) {
        return (v + alignment - 1) & -alignment;
    }
}
