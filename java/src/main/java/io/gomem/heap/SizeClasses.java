package io.gomem.heap;

/**
 * The size-class table: which object sizes the heap serves from shared spans, how many pages
 * each class's span takes, and the lookups from a request size to its class and from a byte
 * offset inside a span to an object index.
 *
 * <h2>What it owns</h2>
 * Immutable static data only, the same numbers as the Go runtime's generated size-class table
 * for linux/amd64 ({@code internal/runtime/gc/sizeclasses.go}, produced by
 * {@code mksizeclasses.go}): 68 classes counting the unused class 0, from 8 B to 32 KiB, with a
 * runtime page of 8 KiB. Nothing here changes after class initialisation, so every method is
 * safe from any thread without synchronisation and none allocates or boxes: they are meant for
 * the allocation fast path.
 *
 * <pre>
 *   request size ──sizeToClass──▶ size class ──spanClass(c, noscan)──▶ span class (index of
 *        (0..32768)                 (1..67)                           MCache / MCentral slot)
 *                                      │
 *                                      ├─ classSize    bytes per object
 *                                      ├─ classPages   8 KiB pages per span
 *                                      ├─ classObjects objects per span = pages*8192/size
 *                                      └─ objectIndex  (offset in span) / size, by multiply+shift
 * </pre>
 *
 * <h2>Invariants (checked by {@link #checkInvariants()})</h2>
 * <ul>
 *   <li>Class 0 is a placeholder (size 0, 0 pages); classes 1..67 have strictly increasing
 *       sizes from 8 to {@link #MAX_SMALL_SIZE}.</li>
 *   <li>Alignment, as Go's generator lays the sizes out: every size is a multiple of 8; sizes
 *       of 32 and up are multiples of 16; sizes from 128 to 1024 are multiples of one eighth
 *       of the largest power of two not above them; sizes above 1024 are multiples of
 *       {@link #LARGE_SIZE_DIV} (which the 128-byte lookup needs). Every power of two from 8 to
 *       32768 is a class of its own, so a power-of-two request is never rounded up.</li>
 *   <li>Each span holds at least one object, at most {@link #MAX_OBJECTS_PER_SPAN}, in at most
 *       {@link #MAX_SIZE_CLASS_PAGES} pages, and its tail waste (span bytes left after the last
 *       whole object) is at most one eighth (12.5%) of the span.</li>
 *   <li>The two lookup tables give, for every size from 0 to 32768, the smallest class whose
 *       size is at least the request (size 0: see below).</li>
 *   <li>{@link #objectIndex} equals {@code offset / classSize} exactly for every offset from 0
 *       to the span's byte length inclusive, in every class.</li>
 * </ul>
 *
 * <h2>Where gomem differs from Go</h2>
 * <ul>
 *   <li><b>Size 0.</b> Go never looks up a class for a zero-byte request: {@code mallocgc}
 *       returns the address of a shared zero-size variable, and its table maps 0 to class 0.
 *       gomem has no such variable (each allocation must be freeable on its own), so
 *       {@link #sizeToClass} maps size 0 to the smallest class, 1 (8 bytes): a zero-byte
 *       allocation takes an 8-byte slot like a 1-byte one. The table's first entry is 1 rather
 *       than Go's 0; that is the only number that differs from Go.</li>
 *   <li><b>The noscan bit of a span class.</b> Go uses it to tell the collector which spans hold
 *       no pointers. gomem has no collector; it keeps the bit (same layout, 136 span classes) to
 *       separate spans whose memory is handed out zeroed ({@code noscan == false}) from spans
 *       whose memory need not be zeroed ({@code noscan == true}), so a caller that will
 *       overwrite the memory anyway never pays for clearing it, and the two kinds never share
 *       a span.</li>
 *   <li><b>The 8-byte lookup's range.</b> Go sends sizes up to 1016 through the 8-byte table and
 *       relies on unsigned wrap-around to send 1017..1024 to index 0 of the 128-byte table;
 *       gomem sends every size up to {@link #SMALL_SIZE_MAX} through the 8-byte table. Both
 *       tables agree at 1024 (class 32), so the answers are the same.</li>
 * </ul>
 *
 * <p>Objects larger than {@link #MAX_SMALL_SIZE} have no size class: the heap gives each its own
 * span of whole pages, and {@link #sizeToClass} rejects them.
 */
public final class SizeClasses {

    /** log2 of the runtime page size. */
    public static final int PAGE_SHIFT = 13;
    /** The runtime page (8 KiB): the unit spans are made of. Not the OS page. */
    public static final int PAGE_SIZE = 1 << PAGE_SHIFT;
    /** Number of size classes, counting the placeholder class 0. */
    public static final int NUM_SIZE_CLASSES = 68;
    /** Largest size served by a size class; larger objects get their own span. */
    public static final int MAX_SMALL_SIZE = 32768;
    /** Step of the fine lookup table, which covers sizes up to {@link #SMALL_SIZE_MAX}. */
    public static final int SMALL_SIZE_DIV = 8;
    /** Largest size looked up in the fine (8-byte step) table. */
    public static final int SMALL_SIZE_MAX = 1024;
    /** Step of the coarse lookup table, for sizes above {@link #SMALL_SIZE_MAX}. */
    public static final int LARGE_SIZE_DIV = 128;
    /** Size of the tiny allocator's shared block; requests below it may share one. */
    public static final int TINY_SIZE = 16;
    /** The size class of {@link #TINY_SIZE} blocks. */
    public static final int TINY_SIZE_CLASS = 2;
    /** Number of span classes: every size class twice, with and without the noscan bit. */
    public static final int NUM_SPAN_CLASSES = NUM_SIZE_CLASSES << 1;
    /**
     * The span class of tiny blocks: 16-byte slots shared by several tiny objects, kept apart
     * from ordinary 16-byte spans because a free inside one means something else there. One past
     * the last ordinary span class.
     */
    public static final int TINY_SPAN_CLASS = NUM_SPAN_CLASSES;
    /** Smallest alignment of any object the size classes hand out. */
    public static final int MIN_ALIGN = 8;
    /** Most objects in one span of any class (class 1: 8192 / 8). */
    public static final int MAX_OBJECTS_PER_SPAN = 1024;
    /** Most pages in one span of any class (class 65: 27264 B objects, 3 to a 10-page span). */
    public static final int MAX_SIZE_CLASS_PAGES = 10;

    /** Bytes per object, by size class. */
    private static final int[] CLASS_SIZE = {
            /*  0 */     0,
            /*  1 */     8, /*  2 */    16, /*  3 */    24, /*  4 */    32,
            /*  5 */    48, /*  6 */    64, /*  7 */    80, /*  8 */    96,
            /*  9 */   112, /* 10 */   128, /* 11 */   144, /* 12 */   160,
            /* 13 */   176, /* 14 */   192, /* 15 */   208, /* 16 */   224,
            /* 17 */   240, /* 18 */   256, /* 19 */   288, /* 20 */   320,
            /* 21 */   352, /* 22 */   384, /* 23 */   416, /* 24 */   448,
            /* 25 */   480, /* 26 */   512, /* 27 */   576, /* 28 */   640,
            /* 29 */   704, /* 30 */   768, /* 31 */   896, /* 32 */  1024,
            /* 33 */  1152, /* 34 */  1280, /* 35 */  1408, /* 36 */  1536,
            /* 37 */  1792, /* 38 */  2048, /* 39 */  2304, /* 40 */  2688,
            /* 41 */  3072, /* 42 */  3200, /* 43 */  3456, /* 44 */  4096,
            /* 45 */  4864, /* 46 */  5376, /* 47 */  6144, /* 48 */  6528,
            /* 49 */  6784, /* 50 */  6912, /* 51 */  8192, /* 52 */  9472,
            /* 53 */  9728, /* 54 */ 10240, /* 55 */ 10880, /* 56 */ 12288,
            /* 57 */ 13568, /* 58 */ 14336, /* 59 */ 16384, /* 60 */ 18432,
            /* 61 */ 19072, /* 62 */ 20480, /* 63 */ 21760, /* 64 */ 24576,
            /* 65 */ 27264, /* 66 */ 28672, /* 67 */ 32768,
    };

    /** Runtime pages (8 KiB) per span, by size class. */
    private static final int[] CLASS_PAGES = {
            0,
            1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  //  1..16
            1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  // 17..32
            1, 1, 2, 1, 2, 1, 2, 1, 3, 2, 3, 1, 3, 2, 3, 4,  // 33..48
            5, 6, 1, 7, 6, 5, 4, 3, 5, 7, 2, 9, 7, 5, 8, 3,  // 49..64
            10, 7, 4,                                        // 65..67
    };

    /**
     * Size class by {@code ceil(size / 8)}, for sizes 0..1024. Entry {@code i} is the smallest
     * class whose size is at least {@code i * 8}; entry 0 is class 1 (gomem's rule for size 0).
     */
    private static final byte[] SIZE_TO_CLASS_8 = {
             1,  1,  2,  3,  4,  5,  5,  6,  6,  7,  7,  8,  8,  9,  9, 10,  // sizes    0..120
            10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15, 16, 16, 17, 17, 18,  // sizes  121..248
            18, 19, 19, 19, 19, 20, 20, 20, 20, 21, 21, 21, 21, 22, 22, 22,  // sizes  249..376
            22, 23, 23, 23, 23, 24, 24, 24, 24, 25, 25, 25, 25, 26, 26, 26,  // sizes  377..504
            26, 27, 27, 27, 27, 27, 27, 27, 27, 28, 28, 28, 28, 28, 28, 28,  // sizes  505..632
            28, 29, 29, 29, 29, 29, 29, 29, 29, 30, 30, 30, 30, 30, 30, 30,  // sizes  633..760
            30, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,  // sizes  761..888
            31, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,  // sizes  889..1016
            32,                                                              // sizes 1017..1024
    };

    /**
     * Size class by {@code ceil((size - 1024) / 128)}, for sizes 1025..32768. Entry {@code i} is
     * the smallest class whose size is at least {@code 1024 + i * 128}. Entry 0 (size 1024) is
     * never read by {@link #sizeToClass} but kept, consistent, as in Go.
     */
    private static final byte[] SIZE_TO_CLASS_128 = {
            32, 33, 34, 35, 36, 37, 37, 38, 38, 39, 39, 40, 40, 40, 41, 41,  // sizes  1024..2944
            41, 42, 43, 43, 44, 44, 44, 44, 44, 45, 45, 45, 45, 45, 45, 46,  // sizes  2945..4992
            46, 46, 46, 47, 47, 47, 47, 47, 47, 48, 48, 48, 49, 49, 50, 51,  // sizes  4993..7040
            51, 51, 51, 51, 51, 51, 51, 51, 51, 52, 52, 52, 52, 52, 52, 52,  // sizes  7041..9088
            52, 52, 52, 53, 53, 54, 54, 54, 54, 55, 55, 55, 55, 55, 56, 56,  // sizes  9089..11136
            56, 56, 56, 56, 56, 56, 56, 56, 56, 57, 57, 57, 57, 57, 57, 57,  // sizes 11137..13184
            57, 57, 57, 58, 58, 58, 58, 58, 58, 59, 59, 59, 59, 59, 59, 59,  // sizes 13185..15232
            59, 59, 59, 59, 59, 59, 59, 59, 59, 60, 60, 60, 60, 60, 60, 60,  // sizes 15233..17280
            60, 60, 60, 60, 60, 60, 60, 60, 60, 61, 61, 61, 61, 61, 62, 62,  // sizes 17281..19328
            62, 62, 62, 62, 62, 62, 62, 62, 62, 63, 63, 63, 63, 63, 63, 63,  // sizes 19329..21376
            63, 63, 63, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,  // sizes 21377..23424
            64, 64, 64, 64, 64, 64, 64, 64, 64, 65, 65, 65, 65, 65, 65, 65,  // sizes 23425..25472
            65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 66, 66,  // sizes 25473..27520
            66, 66, 66, 66, 66, 66, 66, 66, 66, 67, 67, 67, 67, 67, 67, 67,  // sizes 27521..29568
            67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67,  // sizes 29569..31616
            67, 67, 67, 67, 67, 67, 67, 67, 67,                              // sizes 31617..32768
    };

    /** Objects per span, by size class: {@code pages * PAGE_SIZE / size} (0 for class 0). */
    private static final int[] CLASS_OBJECTS = new int[NUM_SIZE_CLASSES];

    /**
     * Reciprocal multipliers, by size class: {@code 2^32 / size} rounded up, i.e. Go's
     * {@code ^uint32(0)/size + 1} (0 for class 0). At most 2^29, so it fits an {@code int}.
     */
    private static final int[] DIV_MAGIC = new int[NUM_SIZE_CLASSES];

    static {
        for (int c = 1; c < NUM_SIZE_CLASSES; c++) {
            CLASS_OBJECTS[c] = (CLASS_PAGES[c] << PAGE_SHIFT) / CLASS_SIZE[c];
            DIV_MAGIC[c] = (int) (0xFFFF_FFFFL / CLASS_SIZE[c] + 1);
        }
    }

    private SizeClasses() {
    }

    /**
     * The size class that serves a request of {@code size} bytes: the smallest class whose size
     * is at least {@code size}. Size 0 gets class 1 (see the class comment).
     *
     * @throws IllegalArgumentException if {@code size} is negative or above
     *         {@link #MAX_SMALL_SIZE} (such objects get their own span, not a class)
     */
    public static int sizeToClass(long size) {
        if (size <= SMALL_SIZE_MAX) {
            if (size < 0) {
                throw new IllegalArgumentException(
                        "size " + size + " is negative: a size class serves 0.." + MAX_SMALL_SIZE + " bytes");
            }
            return SIZE_TO_CLASS_8[(int) (size + (SMALL_SIZE_DIV - 1)) >>> 3];
        }
        if (size > MAX_SMALL_SIZE) {
            throw new IllegalArgumentException("size " + size + " is over MAX_SMALL_SIZE (" + MAX_SMALL_SIZE
                    + "): only sizes 0.." + MAX_SMALL_SIZE
                    + " have a size class; larger objects get a span of whole pages of their own");
        }
        return SIZE_TO_CLASS_128[(int) (size - SMALL_SIZE_MAX + (LARGE_SIZE_DIV - 1)) >>> 7];
    }

    /** {@link #SIZE_TO_CLASS_8} as noscan span classes, for the raw allocation fast path. */
    private static final byte[] NOSCAN_SPAN_CLASS_8 = new byte[SIZE_TO_CLASS_8.length];

    static {
        for (int i = 0; i < NOSCAN_SPAN_CLASS_8.length; i++) {
            NOSCAN_SPAN_CLASS_8[i] = (byte) spanClass(SIZE_TO_CLASS_8[i], true);
        }
    }

    /**
     * The noscan span class for {@code 0 <= size <= SMALL_SIZE_MAX}: one table load, no checks
     * (the caller has done them).
     */
    static int noscanSpanClass8(long size) {
        return NOSCAN_SPAN_CLASS_8[(int) (size + (SMALL_SIZE_DIV - 1)) >>> 3];
    }

    /** Bytes per object in {@code sizeClass} (0 for the placeholder class 0). */
    public static int classSize(int sizeClass) {
        return CLASS_SIZE[sizeClass];
    }

    /** Runtime pages (8 KiB each) in one span of {@code sizeClass}. */
    public static int classPages(int sizeClass) {
        return CLASS_PAGES[sizeClass];
    }

    /** Bytes in one span of {@code sizeClass}: {@code classPages(sizeClass) * PAGE_SIZE}. */
    public static int classSpanBytes(int sizeClass) {
        return CLASS_PAGES[sizeClass] << PAGE_SHIFT;
    }

    /** Objects in one span of {@code sizeClass}: {@code classPages * PAGE_SIZE / classSize}. */
    public static int classObjects(int sizeClass) {
        return CLASS_OBJECTS[sizeClass];
    }

    /**
     * The multiplier that {@link #objectIndex} uses for {@code sizeClass}: the unsigned 32-bit
     * value {@code floor((2^32 - 1) / size) + 1}. Spans may copy it into a field.
     */
    public static int divMagic(int sizeClass) {
        return DIV_MAGIC[sizeClass];
    }

    /**
     * {@code offset / classSize(sizeClass)} without a divide: {@code (offset * divMagic) >>> 32}.
     * Exact for {@code 0 <= offset <= classSpanBytes(sizeClass)} (verified for every such offset
     * by {@link #checkInvariants()}); outside that range the result is meaningless.
     */
    public static int objectIndex(long offset, int sizeClass) {
        assert offset >= 0 && offset <= classSpanBytes(sizeClass)
                : "offset " + offset + " outside span of class " + sizeClass;
        return (int) ((offset * DIV_MAGIC[sizeClass]) >>> 32);
    }

    /**
     * The span class for objects of {@code sizeClass}: {@code sizeClass * 2 + (noscan ? 1 : 0)}.
     * {@code noscan == true} marks spans whose memory need not be zeroed before it is handed
     * out; {@code false} marks spans whose memory is handed out zeroed.
     */
    public static int spanClass(int sizeClass, boolean noscan) {
        return (sizeClass << 1) | (noscan ? 1 : 0);
    }

    /** The size class of a span class. */
    public static int sizeClassOf(int spanClass) {
        return spanClass >>> 1;
    }

    /** Whether a span class is the noscan one (memory need not be zeroed). */
    public static boolean noscan(int spanClass) {
        return (spanClass & 1) != 0;
    }

    /** Whether {@link #checkInvariantsOnce} has passed: the table is static, one check per JVM is enough. */
    private static volatile boolean checked;

    /** {@link #checkInvariants()}, the first time only. */
    static void checkInvariantsOnce() {
        if (!checked) {
            checkInvariants();
            checked = true;
        }
    }

    /**
     * Validates the whole table against the invariants in the class comment, including an
     * exhaustive check of {@link #objectIndex} (about 1.6 million offsets: a few milliseconds).
     *
     * @throws IllegalStateException naming the first class, size or offset that breaks a rule
     */
    public static void checkInvariants() {
        check(CLASS_SIZE.length == NUM_SIZE_CLASSES && CLASS_PAGES.length == NUM_SIZE_CLASSES,
                "table lengths " + CLASS_SIZE.length + "/" + CLASS_PAGES.length + " != " + NUM_SIZE_CLASSES);
        check(CLASS_SIZE[0] == 0 && CLASS_PAGES[0] == 0, "class 0 must be the empty placeholder");
        check(CLASS_SIZE[1] == MIN_ALIGN, "class 1 must be " + MIN_ALIGN + " bytes, is " + CLASS_SIZE[1]);
        check(CLASS_SIZE[NUM_SIZE_CLASSES - 1] == MAX_SMALL_SIZE,
                "last class must be " + MAX_SMALL_SIZE + " bytes, is " + CLASS_SIZE[NUM_SIZE_CLASSES - 1]);
        check(CLASS_SIZE[TINY_SIZE_CLASS] == TINY_SIZE, "TINY_SIZE_CLASS is not " + TINY_SIZE + " bytes");
        int maxObjects = 0;
        int maxPages = 0;
        for (int c = 1; c < NUM_SIZE_CLASSES; c++) {
            int size = CLASS_SIZE[c];
            int pages = CLASS_PAGES[c];
            int spanBytes = pages << PAGE_SHIFT;
            String at = "class " + c + " (" + size + " B, " + pages + " pages)";
            check(size > CLASS_SIZE[c - 1], at + ": sizes must increase");
            check(size % MIN_ALIGN == 0, at + ": size not a multiple of " + MIN_ALIGN);
            if (size >= 32) {
                check(size % 16 == 0, at + ": sizes from 32 up must be multiples of 16");
            }
            if (size >= 128 && size <= SMALL_SIZE_MAX) {
                int align = Integer.highestOneBit(size) / 8;
                check(size % align == 0, at + ": sizes 128..1024 must be multiples of " + align);
            }
            if (size > SMALL_SIZE_MAX) {
                check(size % LARGE_SIZE_DIV == 0, at + ": sizes above 1024 must be multiples of " + LARGE_SIZE_DIV);
            }
            check(pages >= 1 && pages <= MAX_SIZE_CLASS_PAGES, at + ": pages outside 1.." + MAX_SIZE_CLASS_PAGES);
            int objects = spanBytes / size;
            check(objects >= 1 && objects <= MAX_OBJECTS_PER_SPAN, at + ": " + objects + " objects per span");
            check(CLASS_OBJECTS[c] == objects, at + ": objects table says " + CLASS_OBJECTS[c] + ", not " + objects);
            int tailWaste = spanBytes - objects * size;
            check(tailWaste <= spanBytes / 8, at + ": tail waste " + tailWaste + " B is over 12.5% of the span");
            long expectedMagic = 0xFFFF_FFFFL / size + 1;
            check(DIV_MAGIC[c] == expectedMagic, at + ": divMagic " + DIV_MAGIC[c] + " != " + expectedMagic);
            for (int off = 0; off <= spanBytes; off++) {
                int got = (int) (((long) off * DIV_MAGIC[c]) >>> 32);
                if (got != off / size) {
                    throw new IllegalStateException(at + ": objectIndex(" + off + ") = " + got + ", want " + off / size);
                }
            }
            maxObjects = Math.max(maxObjects, objects);
            maxPages = Math.max(maxPages, pages);
        }
        check(maxObjects == MAX_OBJECTS_PER_SPAN, "MAX_OBJECTS_PER_SPAN " + MAX_OBJECTS_PER_SPAN + " != " + maxObjects);
        check(maxPages == MAX_SIZE_CLASS_PAGES, "MAX_SIZE_CLASS_PAGES " + MAX_SIZE_CLASS_PAGES + " != " + maxPages);
        for (int p = MIN_ALIGN; p <= MAX_SMALL_SIZE; p <<= 1) {
            check(CLASS_SIZE[smallestClassAtLeast(p)] == p, "power of two " + p + " has no class of its own");
        }
        check(SIZE_TO_CLASS_8.length == SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1, "8-byte table length " + SIZE_TO_CLASS_8.length);
        for (int i = 0; i < SIZE_TO_CLASS_8.length; i++) {
            int want = smallestClassAtLeast(Math.max(i * SMALL_SIZE_DIV, 1));
            check(SIZE_TO_CLASS_8[i] == want, "8-byte table[" + i + "] = " + SIZE_TO_CLASS_8[i] + ", want " + want);
        }
        check(SIZE_TO_CLASS_128.length == (MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1,
                "128-byte table length " + SIZE_TO_CLASS_128.length);
        for (int i = 0; i < SIZE_TO_CLASS_128.length; i++) {
            int want = smallestClassAtLeast(SMALL_SIZE_MAX + i * LARGE_SIZE_DIV);
            check(SIZE_TO_CLASS_128[i] == want, "128-byte table[" + i + "] = " + SIZE_TO_CLASS_128[i] + ", want " + want);
        }
    }

    /** Linear search for the smallest class of at least {@code size} bytes (checks only). */
    private static int smallestClassAtLeast(int size) {
        for (int c = 1; c < NUM_SIZE_CLASSES; c++) {
            if (CLASS_SIZE[c] >= size) {
                return c;
            }
        }
        throw new IllegalStateException("no class holds " + size + " bytes");
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            throw new IllegalStateException("size-class table: " + message);
        }
    }
}
