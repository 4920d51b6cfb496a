package io.gomem.heap;

/**
 * A per-P cache of free pages (Go's {@code pageCache}, {@code runtime/mpagecache.go}): one
 * 64-page block of address space, aligned to 64 pages, and a bitmap of which of its pages are
 * free to hand out, so that small page allocations need no heap lock.
 *
 * <pre>
 *   base                                              base + 64 pages
 *   |p0 |p1 |p2 |p3 | ...                        |p63|
 *   free:  bit i = 1  page i may be handed out         (Go: cache)
 *   scav:  bit i = 1  page i is scavenged; scav &sube; free  (Go: scav)
 * </pre>
 *
 * <p>Life cycle: {@link PageAlloc#allocToCache} fills an empty cache (the pages become "in use" in
 * the page allocator), {@link #alloc} hands them out one run at a time, and
 * {@link PageAlloc#flush} gives back what is left, scavenged bits included.
 *
 * <p>Guarded by ownership: a cache belongs to one P slot (not to a Java thread) and only its
 * current owner calls {@link #alloc}. {@code allocToCache} and {@code flush} additionally need the
 * heap lock. Not thread-safe.
 *
 * <p>The heap should use the cache only for requests below {@link #MAX_ALLOC_PAGES} pages (Go:
 * a quarter of the cache), so that one block serves several requests.
 */
public final class PageCache {

    /** Pages covered by one cache: one {@code long} bitmap. */
    public static final int PAGES = 64;

    /** Heap policy: serve requests of fewer pages than this from the cache. */
    public static final int MAX_ALLOC_PAGES = PAGES / 4;

    /** Base address of the block; 0 when never filled or cleared. */
    private long base;
    /** Bit i set: page i is free (available from this cache). */
    private long free;
    /** Bit i set: page i is free and scavenged. */
    private long scav;
    /** Scavenged pages in the run returned by the last {@link #alloc}. */
    private long lastScavenged;

    /** True if no page is left to hand out. */
    public boolean isEmpty() {
        return free == 0;
    }

    /**
     * Hands out {@code npages} contiguous pages from the cache, lowest address first. Needs no lock.
     * {@link #lastScavengedPages()} then tells how many of them were scavenged.
     *
     * @param npages 1 to 64
     * @return base address, or 0 if the cache holds no such run
     */
    public long alloc(long npages) {
        if (npages < 1 || npages > PAGES) {
            throw new IllegalArgumentException("page cache alloc of " + npages + " pages");
        }
        lastScavenged = 0;
        if (free == 0) {
            return 0;
        }
        int i;
        long mask;
        if (npages == 1) {
            i = Long.numberOfTrailingZeros(free);
            mask = 1L << i;
        } else {
            i = PallocBits.findBitRange64(free, (int) npages);
            if (i >= PAGES) {
                return 0;
            }
            mask = PallocBits.mask(i, (int) npages);
        }
        lastScavenged = Long.bitCount(scav & mask);
        free &= ~mask;
        scav &= ~mask;
        return base + ((long) i << PageAlloc.PAGE_SHIFT);
    }

    /** Scavenged pages in the run returned by the last {@link #alloc} (0 if it failed). */
    public long lastScavengedPages() {
        return lastScavenged;
    }

    /** Free pages left in the cache. */
    public int freePages() {
        return Long.bitCount(free);
    }

    /** Scavenged pages among those left. */
    public int scavengedPages() {
        return Long.bitCount(scav);
    }

    /** Base address of the cached block (meaningful while not empty). */
    public long base() {
        return base;
    }

    long freeMask() {
        return free;
    }

    long scavMask() {
        return scav;
    }

    /** Called by {@link PageAlloc#allocToCache} with the heap lock held. */
    void fill(long base, long free, long scav) {
        assert (scav & ~free) == 0;
        this.base = base;
        this.free = free;
        this.scav = scav;
    }

    /** Called by {@link PageAlloc#flush} with the heap lock held. */
    void clear() {
        base = 0;
        free = 0;
        scav = 0;
    }

    @Override
    public String toString() {
        return "PageCache[base=" + PageAlloc.hex(base) + ", free=" + Long.toHexString(free) + ", scav="
                + Long.toHexString(scav) + "]";
    }
}
