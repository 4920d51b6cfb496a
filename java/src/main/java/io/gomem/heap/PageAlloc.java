package io.gomem.heap;

import io.gomem.internal.Options;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The page allocator: which 8 KiB pages of the heap's address space are in use, which are free,
 * and which of the free ones have been given back to the OS (scavenged). Modelled on Go's
 * {@code pageAlloc} ({@code runtime/mpagealloc.go}); it only does bookkeeping on addresses and
 * never touches memory or makes a system call, so it can be tested on fake addresses.
 *
 * <h2>What it owns</h2>
 * <ul>
 *   <li>The address ranges handed to it by {@link #grow} ("grown" memory), sorted, adjacent ones
 *       merged. Everything else in the 2^48-byte address space reads as "in use".
 *   <li>Per 4 MiB chunk (512 pages): an allocation bitmap (1 = in use) and a scavenged bitmap
 *       (1 = released to the OS). Both live in a sparse array indexed by chunk number, so only
 *       grown chunks cost memory.
 *   <li>A radix tree of summaries ({@link PallocSum}: free pages at the start, longest free run,
 *       free pages at the end) over the whole address space, 5 levels, fan-out 8 below the root.
 *       Each level is a sparse array too; absent entries read as 0 = nothing free, which is also
 *       what keeps runs from joining across holes between grown ranges.
 *   <li>The search hints {@code searchAddr} (allocation) and {@code scavAddr} (scavenger) and the
 *       page counters.
 * </ul>
 *
 * <pre>
 *  level  entries  one entry covers          index = addr >>> shift
 *  L0     2^14     16 GiB  (2^21 pages)      shift 34   root: scanned linearly from searchAddr
 *  L1     2^17      2 GiB  (2^18 pages)      shift 31   each entry summarises the 8 below it
 *  L2     2^20    256 MiB  (2^15 pages)      shift 28
 *  L3     2^23     32 MiB  (2^12 pages)      shift 25
 *  L4     2^26      4 MiB  (512 pages)       shift 22   leaf: summary of one chunk's bitmap
 *
 *            L0 [ . . . . S . . . . . . . . . . . . ]          S = (start, max, end)
 *                         |
 *            L1          [S S S S S S S S]                     merge(8 children) == parent
 *                                 |
 *            ...                 ...
 *            L4          [S S S S S S S S]
 *                           |
 *            chunk      alloc bits   |1111000000111...0|  512 bits = 8 longs
 *                       scav bits    |0000111100000...1|  512 bits = 8 longs, subset of free
 * </pre>
 *
 * <p>Allocation ({@link #alloc}) is address-ordered first fit: walk from the root, at each level
 * scan the 8 (root: up to 2^14) entries of one block, either finding a run that straddles entry
 * boundaries (done) or the first entry whose max is large enough (descend). The fast path first
 * tries the chunk that {@code searchAddr} points into. Every bitmap change is followed by
 * {@code update}, which recomputes the leaf summaries of the touched chunks and merges upward
 * until a level does not change.
 *
 * <pre>
 *  alloc ──┬── fast: leaf summary at searchAddr fits ── PallocBits.find in that chunk ──┐
 *          └── find: walk L0..L4 (straddling run, or descend) ── PallocBits.find ───────┤
 *                                                                                       v
 *  free ── checkInUse ── markFree ──────────┐                markAllocated (count scavenged)
 *  grow ── addRange, set scavenged bits ────┴──────────> update: leaf summaries, merge upward
 *  scavenge / scavengeClaim ── findScavengeRun (ranges and chunks downward from scavAddr)
 * </pre>
 *
 * <h2>Invariants</h2> (checked by {@link #checkInvariants})
 * <ol>
 *   <li>Every leaf summary equals the summary of its chunk's allocation bitmap (0 if not grown);
 *       every inner summary equals the merge of its 8 children.
 *   <li>scavenged &sube; free, page by page.
 *   <li>Every page below {@code searchAddr} is in use.
 *   <li>Every page that is free and not scavenged, in a physical page (an aligned group of
 *       {@link #physPages} pages) that is all free and unscavenged, lies below {@code scavAddr}.
 *       With physical pages of one page or less that is every free, unscavenged page.
 *   <li>{@code totalPages == inUsePages + claimedPages + freePages}; the counters equal the
 *       bitmap population counts.
 *   <li>A page claimed by the scavenger is "in use" in the bitmap.
 * </ol>
 *
 * <h2>Locking</h2>
 * No lock inside. <b>Every method must be called with the heap lock held</b>; all fields are
 * guarded by it (a counter getter called without it may return a stale value). If a lock is passed
 * to the constructor, Java assertions ({@code -ea}) check that the mutators hold it. (Go's per-P
 * page cache is not here: a P keeps the spans of freed large objects instead, see {@link MCache}.)
 *
 * <h2>Debug</h2>
 * With {@code gomem.checkInvariants=true} ({@link Options#CHECK_INVARIANTS}) every slow-path
 * operation (grow, tree search, scavenging) ends with
 * {@link #checkInvariants()}, which costs a pass over every grown chunk.
 *
 * <h2>Scavenged pages</h2>
 * Grown memory is free and scavenged (it is fresh from mmap, not yet backed). {@link #alloc}
 * reports through {@link #lastScavengedPages()} how many of the pages it returned were scavenged,
 * so that the heap can make them Ready again. The scavenger support walks from high addresses
 * down: {@link #scavenge} (callback under the lock) or the {@link #scavengeClaim} /
 * {@link #scavengeComplete} pair, which lets the caller drop the lock while the OS call runs, as Go
 * does (every path of the {@link Scavenger}: the background cycle, release-all and the limit's
 * synchronous release; the callback is for tests and tools that hold the lock throughout).
 */
public final class PageAlloc {

    /** log2 of the runtime page size. */
    public static final int PAGE_SHIFT = 13;
    /** Runtime page size: 8 KiB. */
    public static final long PAGE_SIZE = 1L << PAGE_SHIFT;
    /** log2 of the pages per chunk. */
    public static final int CHUNK_PAGES_LOG = 9;
    /** Pages per chunk (one bitmap of 512 bits). */
    public static final int CHUNK_PAGES = 1 << CHUNK_PAGES_LOG;
    /** log2 of the chunk size in bytes. */
    public static final int CHUNK_SHIFT = PAGE_SHIFT + CHUNK_PAGES_LOG;
    /** Chunk size: 4 MiB. {@link #grow} takes multiples of it. */
    public static final long CHUNK_BYTES = 1L << CHUNK_SHIFT;
    /** Addresses handled: {@code [0, 2^ADDR_BITS)}. */
    public static final int ADDR_BITS = 48;
    /** First address past the managed address space. */
    public static final long ADDR_LIMIT = 1L << ADDR_BITS;

    /** Levels of the summary tree. */
    static final int LEVELS = 5;
    /** Index of the leaf level. */
    static final int LEAF = LEVELS - 1;
    /** Radix bits per level; the root takes what the others leave of {@link #ADDR_BITS}. */
    static final int[] LEVEL_BITS = {ADDR_BITS - CHUNK_SHIFT - 4 * 3, 3, 3, 3, 3};
    /** {@code addr >>> LEVEL_SHIFT[l]} is the index of the level-l summary covering addr. */
    static final int[] LEVEL_SHIFT = {CHUNK_SHIFT + 12, CHUNK_SHIFT + 9, CHUNK_SHIFT + 6, CHUNK_SHIFT + 3, CHUNK_SHIFT};
    /** log2 of the pages one level-l summary covers. */
    static final int[] LEVEL_LOG_PAGES = {CHUNK_PAGES_LOG + 12, CHUNK_PAGES_LOG + 9, CHUNK_PAGES_LOG + 6, CHUNK_PAGES_LOG + 3, CHUNK_PAGES_LOG};

    /** {@link Options#CHECK_INVARIANTS}: check everything after each slow-path operation. */
    private static final boolean CHECK_INVARIANTS = Options.CHECK_INVARIANTS.booleanValue();

    /** {@code searchAddr} value meaning "nothing is free". */
    private static final long NO_FREE = ADDR_LIMIT;
    /** Longs per chunk in {@link #chunks}: allocation bitmap then scavenged bitmap. */
    private static final int CHUNK_LONGS = 2 * PallocBits.WORDS;
    private static final int SCAV = PallocBits.WORDS;

    /** Receives runs of pages the scavenger picked; see {@link #scavenge}. */
    @FunctionalInterface
    public interface ScavengeSink {
        /**
         * Release {@code [base, base + npages * PAGE_SIZE)} to the OS. Called by {@link #scavenge}
         * with the heap lock held (the {@link Scavenger} also calls it for a claimed run with the
         * lock dropped); must not call back into the page allocator. If it throws, that run stays
         * unscavenged and the exception propagates.
         */
        void release(long base, long npages);
    }

    /** The heap lock, for assertions only; may be null (tests). */
    private final ReentrantLock lock;

    // ---- All fields below: guarded by the heap lock. ----

    /** summary[l] = the level-l summaries, sparse; absent = 0. */
    private final Sparse[] summary = new Sparse[LEVELS];
    /** Chunk bitmaps: chunk ci at element {@code ci * 16}: 8 longs alloc, 8 longs scavenged. */
    private final Sparse chunks = new Sparse(ADDR_BITS - CHUNK_SHIFT + 4);

    /** Grown ranges {@code [rangeBase[i], rangeLimit[i])}, sorted, disjoint, not adjacent. */
    private long[] rangeBase = new long[8];
    private long[] rangeLimit = new long[8];
    private int nranges;

    /** Runs claimed by {@link #scavengeClaim} and not yet completed. */
    private long[] claimBase = new long[4];
    private long[] claimPages = new long[4];
    private int nclaims;

    /** Every page below is in use; {@link #NO_FREE} if nothing is free. */
    private long searchAddr = NO_FREE;
    /** Every free, unscavenged page is below; 0 if there is none. */
    private long scavAddr;

    private long totalPages;
    private long inUsePages;
    private long claimedPages;
    private long scavengedPages;

    /** Out-values of the last call, read by the caller under the same lock hold. */
    private long lastScavenged;
    private long lastClaimPages;

    /** Scratch out-values of {@link #find} and {@link #findScavengeRun}. */
    private long findSearchAddr;
    private long runBase;
    private long runPages;

    /**
     * Pages per physical page (Go's {@code physPageSize / pageSize}, at least 1): the scavenger
     * releases only whole, aligned groups of this many pages that are all free (Go's
     * {@code fillAligned}), so that every range it hands to the OS is whole physical pages.
     */
    private final int physPages;
    /** Pages per huge page for Go 1.19's rule in {@link #findScavengeRun}, or 0 (see the constructor). */
    private final int hugePagePages;

    /** A page allocator that does not check the lock (tests). */
    public PageAlloc() {
        this(null);
    }

    /**
     * @param heapLock the lock that guards this allocator; when non-null, assertions check that
     *                 it is held on every call
     */
    public PageAlloc(ReentrantLock heapLock) {
        this(heapLock, 1);
    }

    /**
     * @param heapLock  as above
     * @param physPages pages per physical page: a power of two from 1 to 64 (physical pages up to
     *                  512 KiB; a physical page of at most one page is 1)
     */
    public PageAlloc(ReentrantLock heapLock, int physPages) {
        this(heapLock, physPages, 0);
    }

    /**
     * @param heapLock      as above
     * @param physPages     as above
     * @param hugePagePages pages per transparent huge page (256 for 2 MiB) when the scavenger is
     *                      to release a wholly free huge page rather than break it (Go 1.19's rule,
     *                      under {@code gomem.hugePages=advise}); 0 for no such rule
     */
    public PageAlloc(ReentrantLock heapLock, int physPages, int hugePagePages) {
        if (hugePagePages != 0 && (Integer.bitCount(hugePagePages) != 1 || hugePagePages > CHUNK_PAGES)) {
            throw new IllegalArgumentException("pages per huge page " + hugePagePages + " must be 0 or a power of two up to a chunk");
        }
        this.hugePagePages = hugePagePages;
        if (physPages < 1 || physPages > 64 || Integer.bitCount(physPages) != 1) {
            throw new IllegalArgumentException("pages per physical page " + physPages + " must be a power of two from 1 to 64");
        }
        this.physPages = physPages;
        this.lock = heapLock;
        for (int l = 0; l < LEVELS; l++) {
            summary[l] = new Sparse(ADDR_BITS - LEVEL_SHIFT[l]);
        }
    }

    // =====================================================================================
    // Growth
    // =====================================================================================

    /**
     * Adds {@code [base, base + bytes)} to the managed memory, free and scavenged.
     *
     * @throws IllegalArgumentException if base or bytes is not a positive multiple of
     *                                  {@link #CHUNK_BYTES} or the range passes {@link #ADDR_LIMIT}
     * @throws IllegalStateException    if the range overlaps memory grown before
     */
    public void grow(long base, long bytes) {
        assertLocked();
        if (base <= 0 || bytes <= 0 || (base & (CHUNK_BYTES - 1)) != 0 || (bytes & (CHUNK_BYTES - 1)) != 0
                || bytes > ADDR_LIMIT - base) {
            throw new IllegalArgumentException("grow(" + hex(base) + ", " + hex(bytes)
                    + "): base and size must be positive multiples of 4 MiB below " + hex(ADDR_LIMIT));
        }
        long limit = base + bytes;
        addRange(base, limit);
        for (long ci = base >>> CHUNK_SHIFT; ci < limit >>> CHUNK_SHIFT; ci++) {
            long[] a = chunks.leafForWrite(ci * CHUNK_LONGS);
            int off = chunkOff(ci);
            for (int w = 0; w < PallocBits.WORDS; w++) {
                a[off + w] = 0;
                a[off + SCAV + w] = -1L;
            }
        }
        long npages = bytes >>> PAGE_SHIFT;
        if (base < searchAddr) {
            searchAddr = base;
        }
        update(base, npages, true, false);
        totalPages += npages;
        scavengedPages += npages;
        debugCheck();
    }

    // =====================================================================================
    // Allocation
    // =====================================================================================

    /**
     * Allocates {@code npages} contiguous pages at the lowest address where they fit.
     * {@link #lastScavengedPages()} then tells how many of them were scavenged; their scavenged
     * bits are cleared.
     *
     * @return base address, or 0 if no run of that many free pages exists
     */
    public long alloc(long npages) {
        assertLocked();
        if (npages <= 0) {
            throw new IllegalArgumentException("alloc of " + npages + " pages");
        }
        lastScavenged = 0;
        if (npages > freePages() || searchAddr >= rangeLimit[nranges - 1]) {
            return 0;
        }
        long addr;
        long newSearch;
        boolean slow = false;
        long ci = searchAddr >>> CHUNK_SHIFT;
        int pi = pageInChunk(searchAddr);
        if (CHUNK_PAGES - pi >= npages && PallocSum.max(summary[LEAF].get(ci)) >= npages) {
            // Fast path: the run fits in the chunk searchAddr points into.
            long[] a = chunks.leaf(ci * CHUNK_LONGS);
            int off = chunkOff(ci);
            int j = PallocBits.find(a, off, (int) npages, pi);
            if (j < 0) {
                throw badSummary("chunk at " + hex(chunkBase(ci)) + " has max " + PallocSum.max(summary[LEAF].get(ci))
                        + " but no run of " + npages + " from page " + pi);
            }
            addr = chunkBase(ci) + ((long) j << PAGE_SHIFT);
            newSearch = chunkBase(ci) + ((long) PallocBits.firstFree(a, off, pi) << PAGE_SHIFT);
        } else {
            addr = find(npages);
            if (addr == 0) {
                if (npages == 1) {
                    searchAddr = NO_FREE;
                }
                return 0;
            }
            newSearch = findSearchAddr;
            slow = true;
        }
        if (newSearch == addr) {
            // The run starts at the first free page, so everything below its end is now in use.
            newSearch = addr + (npages << PAGE_SHIFT);
        }
        lastScavenged = markAllocated(addr, npages);
        inUsePages += npages;
        scavengedPages -= lastScavenged;
        if (newSearch > searchAddr) {
            searchAddr = newSearch;
        }
        if (CHECK_INVARIANTS && slow) {
            checkInvariants();
        }
        return addr;
    }

    /**
     * Pages of the last successful {@link #alloc} that were scavenged (0 after a failed one). The
     * heap must make them Ready ({@code sysUsed}) before use. Read under the same lock hold.
     */
    public long lastScavengedPages() {
        assertLocked();
        return lastScavenged;
    }

    /**
     * Tree search for the first run of {@code npages} free pages. Returns its address or 0, and
     * in {@link #findSearchAddr} a new candidate {@code searchAddr}: the base of the narrowest
     * region seen that must contain the first free page.
     */
    private long find(long npages) {
        long i = 0; // index, at level l, of the first entry of the block being scanned
        long ffBase = 0; // [ffBase, ffBound]: where the first free page must be
        long ffBound = ADDR_LIMIT - 1;
        levels:
        for (int l = 0; l < LEVELS; l++) {
            int blockEntries = 1 << LEVEL_BITS[l];
            int logEntryPages = LEVEL_LOG_PAGES[l];
            long entryPages = 1L << logEntryPages;
            int shift = LEVEL_SHIFT[l];
            i <<= LEVEL_BITS[l];

            int j = 0;
            long searchIdx = searchAddr >>> shift;
            if ((searchIdx & -(long) blockEntries) == i) {
                j = (int) (searchIdx & (blockEntries - 1)); // entries before it are all in use
            }

            Sparse level = summary[l];
            long[] page = null;
            long pageNo = -1;
            long base = 0; // start of the current run, in pages from the block start
            long size = 0; // length of the current run
            while (j < blockEntries) {
                long idx = i + j;
                if (idx >>> Sparse.LEAF_BITS != pageNo) {
                    pageNo = idx >>> Sparse.LEAF_BITS;
                    page = level.leaf(idx);
                }
                if (page == null) { // a whole page of summaries is absent: nothing free there
                    size = 0;
                    j = (int) ((pageNo + 1 << Sparse.LEAF_BITS) - i);
                    continue;
                }
                long sum = page[(int) (idx & Sparse.LEAF_MASK)];
                j++;
                if (sum == 0) {
                    size = 0;
                    continue;
                }
                long entryAddr = idx << shift;
                long entryBound = entryAddr + (entryPages << PAGE_SHIFT) - 1;
                if (ffBase <= entryAddr && entryBound <= ffBound) {
                    ffBase = entryAddr;
                    ffBound = entryBound;
                }
                long s = PallocSum.start(sum);
                if (size + s >= npages) {
                    if (size == 0) {
                        base = (long) (j - 1) << logEntryPages;
                    }
                    size += s;
                    break;
                }
                if (PallocSum.max(sum) >= npages) {
                    i = idx;
                    continue levels;
                }
                if (size == 0 || s < entryPages) {
                    size = PallocSum.end(sum);
                    base = ((long) j << logEntryPages) - size;
                } else {
                    size += entryPages;
                }
            }
            if (size >= npages) {
                findSearchAddr = ffBase;
                return (i << shift) + (base << PAGE_SHIFT);
            }
            if (l == 0) {
                return 0;
            }
            throw badSummary("level " + (l - 1) + " entry " + hex(i >>> LEVEL_BITS[l]) + " = "
                    + PallocSum.toString(summary[l - 1].get(i >>> LEVEL_BITS[l])) + " promised " + npages
                    + " pages, level " + l + " block at " + hex(i) + " has none");
        }
        // i is a chunk index whose summary says the run is inside it.
        long ci = i;
        long[] a = chunks.leaf(ci * CHUNK_LONGS);
        int off = chunkOff(ci);
        int j = PallocBits.find(a, off, (int) npages, 0);
        if (j < 0) {
            throw badSummary("chunk at " + hex(chunkBase(ci)) + " summarised " + PallocSum.toString(summary[LEAF].get(ci))
                    + " has no run of " + npages);
        }
        long first = chunkBase(ci) + ((long) PallocBits.firstFree(a, off, 0) << PAGE_SHIFT);
        if (ffBase <= first && chunkBase(ci + 1) - 1 <= ffBound) {
            ffBase = first;
        }
        findSearchAddr = ffBase;
        return chunkBase(ci) + ((long) j << PAGE_SHIFT);
    }

    // =====================================================================================
    // Free
    // =====================================================================================

    /**
     * Frees {@code [base, base + npages * PAGE_SIZE)}. Nothing changes if it throws.
     *
     * @throws IllegalArgumentException if base is not page aligned or npages < 1
     * @throws IllegalStateException    if the range is not entirely in grown memory, or some of its
     *                                  pages are already free (double free), or it overlaps a run
     *                                  claimed by the scavenger
     */
    public void free(long base, long npages) {
        assertLocked();
        checkInUse("free", base, npages);
        markFree(base, npages, false);
        inUsePages -= npages;
    }

    /**
     * Frees {@code [base, base + npages * PAGE_SIZE)} whose memory the caller already returned to
     * the OS (Prepared): the pages go back marked scavenged, so whoever allocates them makes them
     * Ready first. Otherwise as {@link #free}.
     */
    public void freeScavenged(long base, long npages) {
        assertLocked();
        checkInUse("free", base, npages);
        markFree(base, npages, true);
        inUsePages -= npages;
        scavengedPages += npages;
        debugCheck();
    }

    /** Validates that {@code [base, +npages)} is grown, fully in use and not claimed. */
    private void checkInUse(String op, long base, long npages) {
        if ((base & (PAGE_SIZE - 1)) != 0 || npages < 1) {
            throw new IllegalArgumentException(op + " of " + range(base, npages) + ": base must be page aligned, npages >= 1");
        }
        if (base <= 0 || npages > (ADDR_LIMIT - base) >>> PAGE_SHIFT || !isGrown(base, npages << PAGE_SHIFT)) {
            throw new IllegalStateException(op + " of " + range(base, npages) + ": outside grown memory");
        }
        long inUse = countAllocated(base, npages);
        if (inUse != npages) {
            throw new IllegalStateException(op + " of " + range(base, npages) + ": " + (npages - inUse)
                    + " page(s) already free, first at " + hex(firstFreeIn(base, npages)));
        }
        for (int k = 0; k < nclaims; k++) {
            long cb = claimBase[k];
            long cl = cb + (claimPages[k] << PAGE_SHIFT);
            if (cb < base + (npages << PAGE_SHIFT) && base < cl) {
                throw new IllegalStateException(op + " of " + range(base, npages) + ": overlaps "
                        + range(cb, claimPages[k]) + " claimed by the scavenger");
            }
        }
    }

    // =====================================================================================
    // Scavenger support
    // =====================================================================================

    /**
     * Finds up to {@code maxPages} free, unscavenged pages, highest addresses first, hands each
     * run (never crossing a chunk boundary) to {@code sink} and marks it scavenged once the sink
     * returns. Allocation-free if the sink is.
     *
     * @return pages scavenged; less than {@code maxPages} only if no candidate is left
     */
    public long scavenge(long maxPages, ScavengeSink sink) {
        assertLocked();
        long done = 0;
        while (done < maxPages && findScavengeRun(maxPages - done)) {
            long base = runBase;
            long n = runPages;
            sink.release(base, n);
            long ci = base >>> CHUNK_SHIFT;
            PallocBits.setRange(chunks.leaf(ci * CHUNK_LONGS), chunkOff(ci) + SCAV, pageInChunk(base), (int) n);
            scavAddr = base;
            scavengedPages += n;
            done += n;
        }
        debugCheck();
        return done;
    }

    /**
     * Go-style first half of scavenging one run: picks the highest run of at most
     * {@code maxPages} free, unscavenged pages (within one chunk) and marks it in use so that
     * nobody allocates it while the caller, with the heap lock released, returns it to the OS.
     * Its length is {@link #lastClaimPages()}. Must be followed by {@link #scavengeComplete}.
     *
     * @return base of the claimed run, or 0 if there is nothing to scavenge
     */
    public long scavengeClaim(long maxPages) {
        assertLocked();
        lastClaimPages = 0;
        if (maxPages <= 0 || !findScavengeRun(maxPages)) {
            return 0;
        }
        long base = runBase;
        long n = runPages;
        long scav = markAllocated(base, n);
        assert scav == 0 : "claimed scavenged pages";
        scavAddr = base;
        if (nclaims == claimBase.length) {
            claimBase = java.util.Arrays.copyOf(claimBase, 2 * nclaims);
            claimPages = java.util.Arrays.copyOf(claimPages, 2 * nclaims);
        }
        claimBase[nclaims] = base;
        claimPages[nclaims] = n;
        nclaims++;
        claimedPages += n;
        lastClaimPages = n;
        debugCheck();
        return base;
    }

    /** Length in pages of the run returned by the last {@link #scavengeClaim}. */
    public long lastClaimPages() {
        assertLocked();
        return lastClaimPages;
    }

    /**
     * Second half of {@link #scavengeClaim}: frees the claimed run again, scavenged if
     * {@code released} (the OS call succeeded), otherwise as it was.
     *
     * @throws IllegalStateException if {@code (base, npages)} is not an outstanding claim
     */
    public void scavengeComplete(long base, long npages, boolean released) {
        assertLocked();
        int k = 0;
        while (k < nclaims && (claimBase[k] != base || claimPages[k] != npages)) {
            k++;
        }
        if (k == nclaims) {
            throw new IllegalStateException("scavengeComplete of " + range(base, npages) + ": not a claimed run");
        }
        nclaims--;
        claimBase[k] = claimBase[nclaims];
        claimPages[k] = claimPages[nclaims];
        claimedPages -= npages;
        markFree(base, npages, released);
        if (released) {
            scavengedPages += npages;
        }
        debugCheck();
    }

    /**
     * Sets {@link #runBase}/{@link #runPages} to the top {@code <= maxPages} pages of the highest
     * run of free, unscavenged pages below {@code scavAddr}, cut at chunk boundaries. If there is
     * none, sets {@code scavAddr} to 0 and returns false.
     */
    private boolean findScavengeRun(long maxPages) {
        long cursor = scavAddr;
        int r = rangeBelow(cursor);
        for (; r >= 0; r--) {
            long lo = rangeBase[r];
            long hi = Math.min(rangeLimit[r], cursor);
            for (long ci = (hi - 1) >>> CHUNK_SHIFT; ci >= lo >>> CHUNK_SHIFT; ci--) {
                if (summary[LEAF].get(ci) == 0) {
                    continue; // nothing free in this chunk
                }
                long cb = chunkBase(ci);
                int limitIdx = (int) Math.min(CHUNK_PAGES, (hi - cb) >>> PAGE_SHIFT);
                long[] a = chunks.leaf(ci * CHUNK_LONGS);
                int off = chunkOff(ci);
                int top = highestCandidate(a, off, limitIdx, physPages);
                if (top < 0) {
                    continue;
                }
                // At least one physical page, and whole ones: the run's top is a group's top (groups are all in or out).
                int max = (int) Math.max(physPages, Math.min(maxPages, CHUNK_PAGES)) & -physPages;
                int n = candidateRunDown(a, off, top, max, physPages);
                if (hugePagePages > 0) {
                    // Go 1.19: a run that reaches a huge page boundary and whose free run goes down to the
                    // huge page below its start takes that whole huge page, rather than breaking it.
                    int start = top - n + 1;
                    int end = top + 1;
                    int full = candidateRunDown(a, off, top, CHUNK_PAGES, physPages);
                    int above = (start + hugePagePages - 1) & -hugePagePages;
                    int below = start & -hugePagePages;
                    if (above <= end && below >= end - full) {
                        n += start - below;
                    }
                }
                runBase = cb + ((long) (top - n + 1) << PAGE_SHIFT);
                runPages = n;
                return true;
            }
        }
        scavAddr = 0;
        return false;
    }

    /**
     * Go's {@code fillAligned(x, m)}: every aligned group of {@code m} bits (a power of two up to
     * 64) that has any bit set becomes all set. Applied to "in use or scavenged", it leaves as
     * candidates only whole physical pages all of whose pages are free and unscavenged.
     */
    static long fillAligned(long x, int m) {
        if (m == 1) {
            return x;
        }
        long r = 0;
        long group = m == 64 ? -1L : (1L << m) - 1;
        for (int i = 0; i < 64; i += m) {
            if ((x & (group << i)) != 0) {
                r |= group << i;
            }
        }
        return r;
    }

    /** Highest page below {@code limitIdx} that is free and not scavenged (in a whole candidate group of {@code m}), or -1. */
    private static int highestCandidate(long[] a, int off, int limitIdx, int m) {
        for (int w = (limitIdx - 1) >>> 6; w >= 0; w--) {
            long c = ~fillAligned(a[off + w] | a[off + SCAV + w], m);
            if (w == (limitIdx - 1) >>> 6) {
                c &= -1L >>> (63 - ((limitIdx - 1) & 63));
            }
            if (c != 0) {
                return (w << 6) + 63 - Long.numberOfLeadingZeros(c);
            }
        }
        return -1;
    }

    /**
     * Length, capped at {@code max}, of the candidate run that ends (at its top) at page
     * {@code top}; a multiple of {@code m} when {@code max} is (candidates come in aligned groups of m).
     */
    private static int candidateRunDown(long[] a, int off, int top, int max, int m) {
        int n = 0;
        int w = top >>> 6;
        int b = top & 63;
        while (w >= 0 && n < max) {
            long c = ~fillAligned(a[off + w] | a[off + SCAV + w], m) << (63 - b); // page 'b' now at bit 63
            int ones = Long.numberOfLeadingZeros(~c);
            if (ones > b + 1) {
                ones = b + 1;
            }
            n += ones;
            if (ones < b + 1) {
                break;
            }
            w--;
            b = 63;
        }
        return Math.min(n, max);
    }

    // =====================================================================================
    // Counters and queries
    // =====================================================================================

    /** Pages grown so far. */
    public long totalPages() {
        return totalPages;
    }

    /** Pages in use: handed out by {@link #alloc} or held by page caches. */
    public long inUsePages() {
        return inUsePages;
    }

    /** Pages free for allocation (excludes pages claimed by the scavenger). */
    public long freePages() {
        return totalPages - inUsePages - claimedPages;
    }

    /** Free pages that are scavenged (released to the OS). */
    public long scavengedPages() {
        return scavengedPages;
    }

    /** Pages currently claimed by {@link #scavengeClaim} and not completed. */
    public long claimedPages() {
        return claimedPages;
    }

    /** Whether {@code [base, base + bytes)} lies inside memory given to {@link #grow}. */
    public boolean isGrown(long base, long bytes) {
        int r = rangeBelow(base + 1);
        return r >= 0 && base >= rangeBase[r] && base + bytes <= rangeLimit[r];
    }

    /**
     * Clears the scavenged bit of every free page in {@code [addr, addr + npages pages)}: pages
     * that share a physical page with pages just allocated, which the heap made Ready with them
     * (the OS works in whole physical pages). Returns how many were cleared.
     */
    public long unscavenge(long addr, long npages) {
        assertLocked();
        long cleared = 0;
        for (long i = 0; i < npages; i++) {
            long a = addr + (i << PAGE_SHIFT);
            if (!isAllocated(a) && isScavenged(a)) {
                long ci = a >>> CHUNK_SHIFT;
                PallocBits.clearRange(chunks.leaf(ci * CHUNK_LONGS), chunkOff(ci) + SCAV, pageInChunk(a), 1);
                cleared++;
            }
        }
        if (cleared > 0) {
            scavengedPages -= cleared;
            long phys = (long) physPages << PAGE_SHIFT;
            scavAddr = Math.max(scavAddr, (addr + (npages << PAGE_SHIFT) + phys - 1) & -phys); // candidates lie below it
        }
        debugCheck();
        return cleared;
    }

    /** Pages in use in the chunk at {@code chunkBase} (0 if it is not grown). */
    public long inUsePagesOfChunk(long chunkBase) {
        assertLocked();
        if (!isGrown(chunkBase, CHUNK_BYTES)) {
            return 0;
        }
        long ci = chunkBase >>> CHUNK_SHIFT;
        return PallocBits.popcount(chunks.leaf(ci * CHUNK_LONGS), chunkOff(ci));
    }

    /** Pages per physical page (see the constructor). */
    public int physPages() {
        return physPages;
    }

    /** Debug: whether the page at {@code addr} is in use (true for memory never grown). */
    boolean isAllocated(long addr) {
        if (!isGrown(addr, PAGE_SIZE)) {
            return true;
        }
        long ci = addr >>> CHUNK_SHIFT;
        int p = pageInChunk(addr);
        return (chunks.leaf(ci * CHUNK_LONGS)[chunkOff(ci) + (p >>> 6)] >>> p & 1) != 0;
    }

    /** Debug: whether the page at {@code addr} is marked scavenged. */
    boolean isScavenged(long addr) {
        if (!isGrown(addr, PAGE_SIZE)) {
            return false;
        }
        long ci = addr >>> CHUNK_SHIFT;
        int p = pageInChunk(addr);
        return (chunks.leaf(ci * CHUNK_LONGS)[chunkOff(ci) + SCAV + (p >>> 6)] >>> p & 1) != 0;
    }

    /** Debug: the allocation hint. */
    long searchAddr() {
        return searchAddr;
    }

    /** Debug: the scavenger's cursor. */
    long scavAddr() {
        return scavAddr;
    }

    /** Debug: the summary at level {@code l}, index {@code idx}. */
    long summaryAt(int l, long idx) {
        return summary[l].get(idx);
    }

    // =====================================================================================
    // Bitmap and summary maintenance
    // =====================================================================================

    /** Marks a range in use, clears its scavenged bits, updates summaries; returns scavenged count. */
    private long markAllocated(long base, long npages) {
        long last = base + ((npages - 1) << PAGE_SHIFT);
        long sc = base >>> CHUNK_SHIFT;
        long ec = last >>> CHUNK_SHIFT;
        long scav = 0;
        for (long ci = sc; ci <= ec; ci++) {
            int from = ci == sc ? pageInChunk(base) : 0;
            int to = ci == ec ? pageInChunk(last) : CHUNK_PAGES - 1;
            long[] a = chunks.leaf(ci * CHUNK_LONGS);
            int off = chunkOff(ci);
            if (from == 0 && to == CHUNK_PAGES - 1) {
                scav += PallocBits.popcount(a, off + SCAV);
                for (int w = 0; w < PallocBits.WORDS; w++) {
                    a[off + w] = -1L;
                    a[off + SCAV + w] = 0;
                }
            } else {
                int n = to - from + 1;
                scav += PallocBits.popcountRange(a, off + SCAV, from, n);
                PallocBits.setRange(a, off, from, n);
                PallocBits.clearRange(a, off + SCAV, from, n);
            }
        }
        update(base, npages, true, true);
        return scav;
    }

    /** Marks a range (known to be in use) free, optionally scavenged; moves the hints; updates summaries. */
    private void markFree(long base, long npages, boolean scavenged) {
        long last = base + ((npages - 1) << PAGE_SHIFT);
        long sc = base >>> CHUNK_SHIFT;
        long ec = last >>> CHUNK_SHIFT;
        for (long ci = sc; ci <= ec; ci++) {
            int from = ci == sc ? pageInChunk(base) : 0;
            int to = ci == ec ? pageInChunk(last) : CHUNK_PAGES - 1;
            long[] a = chunks.leaf(ci * CHUNK_LONGS);
            int off = chunkOff(ci);
            PallocBits.clearRange(a, off, from, to - from + 1);
            if (scavenged) {
                PallocBits.setRange(a, off + SCAV, from, to - from + 1);
            }
        }
        if (base < searchAddr) {
            searchAddr = base;
        }
        if (!scavenged) {
            // The top of the physical page holding the last freed page: freeing it may make that whole group a candidate.
            scavAddr = Math.max(scavAddr, (last + ((long) physPages << PAGE_SHIFT)) & -((long) physPages << PAGE_SHIFT));
        }
        update(base, npages, true, false);
    }

    /**
     * Brings the summaries in line with the bitmaps after a change to {@code [base, +npages)}.
     * With {@code contig}, the chunks strictly inside the range were wholly allocated
     * ({@code alloc}) or wholly freed and need no bitmap scan.
     */
    private void update(long base, long npages, boolean contig, boolean alloc) {
        long last = base + ((npages - 1) << PAGE_SHIFT);
        long sc = base >>> CHUNK_SHIFT;
        long ec = last >>> CHUNK_SHIFT;
        Sparse leaves = summary[LEAF];
        if (sc == ec) {
            long y = summarizeChunk(sc);
            long[] p = leaves.leafForWrite(sc);
            int k = (int) (sc & Sparse.LEAF_MASK);
            if (p[k] == y) {
                return;
            }
            p[k] = y;
        } else if (contig) {
            leaves.set(sc, summarizeChunk(sc));
            long whole = alloc ? 0 : PallocSum.FREE_CHUNK;
            for (long ci = sc + 1; ci < ec; ci++) {
                leaves.set(ci, whole);
            }
            leaves.set(ec, summarizeChunk(ec));
        } else {
            for (long ci = sc; ci <= ec; ci++) {
                leaves.set(ci, summarizeChunk(ci));
            }
        }
        for (int l = LEAF - 1; l >= 0; l--) {
            Sparse parent = summary[l];
            Sparse child = summary[l + 1];
            int logChildPages = LEVEL_LOG_PAGES[l + 1];
            boolean changed = false;
            for (long i = base >>> LEVEL_SHIFT[l], hi = last >>> LEVEL_SHIFT[l]; i <= hi; i++) {
                long sum = mergeChildren(child, i, logChildPages);
                long[] p = sum == 0 ? parent.leaf(i) : parent.leafForWrite(i);
                if (p == null) {
                    continue;
                }
                int k = (int) (i & Sparse.LEAF_MASK);
                if (p[k] != sum) {
                    p[k] = sum;
                    changed = true;
                }
            }
            if (!changed) {
                return;
            }
        }
    }

    private static long mergeChildren(Sparse child, long parentIdx, int logChildPages) {
        long first = parentIdx << 3;
        long[] cp = child.leaf(first);
        return cp == null ? 0 : PallocSum.merge(cp, (int) (first & Sparse.LEAF_MASK), 8, logChildPages);
    }

    private long summarizeChunk(long ci) {
        return PallocBits.summarize(chunks.leaf(ci * CHUNK_LONGS), chunkOff(ci));
    }

    private long countAllocated(long base, long npages) {
        long last = base + ((npages - 1) << PAGE_SHIFT);
        long sc = base >>> CHUNK_SHIFT;
        long ec = last >>> CHUNK_SHIFT;
        long n = 0;
        for (long ci = sc; ci <= ec; ci++) {
            int from = ci == sc ? pageInChunk(base) : 0;
            int to = ci == ec ? pageInChunk(last) : CHUNK_PAGES - 1;
            n += PallocBits.popcountRange(chunks.leaf(ci * CHUNK_LONGS), chunkOff(ci), from, to - from + 1);
        }
        return n;
    }

    private long firstFreeIn(long base, long npages) {
        for (long p = 0; p < npages; p++) {
            long addr = base + (p << PAGE_SHIFT);
            if (!isAllocated(addr)) {
                return addr;
            }
        }
        return 0;
    }

    // =====================================================================================
    // Grown ranges
    // =====================================================================================

    private void addRange(long base, long limit) {
        int r = rangeBelow(limit); // last range starting below limit
        if (r >= 0 && rangeLimit[r] > base) {
            throw new IllegalStateException("grow of [" + hex(base) + ", " + hex(limit) + ") overlaps grown ["
                    + hex(rangeBase[r]) + ", " + hex(rangeLimit[r]) + ")");
        }
        int at = r + 1;
        boolean joinLeft = r >= 0 && rangeLimit[r] == base;
        boolean joinRight = at < nranges && rangeBase[at] == limit;
        if (joinLeft && joinRight) {
            rangeLimit[r] = rangeLimit[at];
            System.arraycopy(rangeBase, at + 1, rangeBase, at, nranges - at - 1);
            System.arraycopy(rangeLimit, at + 1, rangeLimit, at, nranges - at - 1);
            nranges--;
        } else if (joinLeft) {
            rangeLimit[r] = limit;
        } else if (joinRight) {
            rangeBase[at] = base;
        } else {
            if (nranges == rangeBase.length) {
                rangeBase = java.util.Arrays.copyOf(rangeBase, 2 * nranges);
                rangeLimit = java.util.Arrays.copyOf(rangeLimit, 2 * nranges);
            }
            System.arraycopy(rangeBase, at, rangeBase, at + 1, nranges - at);
            System.arraycopy(rangeLimit, at, rangeLimit, at + 1, nranges - at);
            rangeBase[at] = base;
            rangeLimit[at] = limit;
            nranges++;
        }
    }

    /** Index of the last grown range whose base is below {@code addr}, or -1. */
    private int rangeBelow(long addr) {
        int lo = 0;
        int hi = nranges - 1;
        int ans = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (rangeBase[mid] < addr) {
                ans = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return ans;
    }

    // =====================================================================================
    // Invariants
    // =====================================================================================

    /**
     * Recomputes every summary from the bitmaps and every counter from the bit counts, and checks
     * the invariants listed in the class comment.
     *
     * @throws IllegalStateException describing the first violation found
     */
    public void checkInvariants() {
        assertLocked();
        long grown = 0;
        for (int r = 0; r < nranges; r++) {
            if (rangeBase[r] >= rangeLimit[r] || (r > 0 && rangeBase[r] <= rangeLimit[r - 1])
                    || ((rangeBase[r] | rangeLimit[r]) & (CHUNK_BYTES - 1)) != 0) {
                throw new IllegalStateException("grown ranges out of order or unmerged at index " + r);
            }
            grown += (rangeLimit[r] - rangeBase[r]) >>> PAGE_SHIFT;
        }
        if (grown != totalPages) {
            throw new IllegalStateException("totalPages " + totalPages + " but grown ranges hold " + grown);
        }
        long allocBits = 0;
        long scavBits = 0;
        long firstFree = NO_FREE;
        long highestCandidate = -1;
        for (int r = 0; r < nranges; r++) {
            for (long ci = rangeBase[r] >>> CHUNK_SHIFT; ci < rangeLimit[r] >>> CHUNK_SHIFT; ci++) {
                long[] a = chunks.leaf(ci * CHUNK_LONGS);
                int off = chunkOff(ci);
                for (int w = 0; w < PallocBits.WORDS; w++) {
                    long al = a[off + w];
                    long sc = a[off + SCAV + w];
                    if ((al & sc) != 0) {
                        throw new IllegalStateException("pages in use and scavenged in chunk " + hex(chunkBase(ci))
                                + " word " + w + ": " + Long.toHexString(al & sc));
                    }
                    allocBits += Long.bitCount(al);
                    scavBits += Long.bitCount(sc);
                    if (al != -1L && firstFree == NO_FREE) {
                        firstFree = chunkBase(ci) + ((long) ((w << 6) + Long.numberOfTrailingZeros(~al)) << PAGE_SHIFT);
                    }
                    long cand = ~fillAligned(al | sc, physPages); // candidates: whole free, unscavenged physical pages
                    if (cand != 0) {
                        highestCandidate = chunkBase(ci) + ((long) ((w << 6) + 63 - Long.numberOfLeadingZeros(cand)) << PAGE_SHIFT);
                    }
                }
            }
        }
        // Every summary page that exists, at every level, against a recomputation.
        for (int l = LEAF; l >= 0; l--) {
            Sparse level = summary[l];
            for (int t = 0; t < level.top.length; t++) {
                long[][] mid = level.top[t];
                if (mid == null) {
                    continue;
                }
                for (int m = 0; m < mid.length; m++) {
                    long[] p = mid[m];
                    if (p == null) {
                        continue;
                    }
                    long first = ((long) t << (Sparse.LEAF_BITS + Sparse.MID_BITS)) | ((long) m << Sparse.LEAF_BITS);
                    for (int k = 0; k < p.length; k++) {
                        long idx = first + k;
                        long want;
                        if (l == LEAF) {
                            want = isGrown(chunkBase(idx), CHUNK_BYTES) ? summarizeChunk(idx) : 0;
                        } else {
                            want = mergeChildren(summary[l + 1], idx, LEVEL_LOG_PAGES[l + 1]);
                        }
                        if (p[k] != want) {
                            throw new IllegalStateException("summary level " + l + " index " + hex(idx) + " (addr "
                                    + hex(idx << LEVEL_SHIFT[l]) + ") is " + PallocSum.toString(p[k]) + ", recomputed "
                                    + PallocSum.toString(want));
                        }
                    }
                }
            }
        }
        if (allocBits != inUsePages + claimedPages) {
            throw new IllegalStateException("in-use bits " + allocBits + " != inUsePages " + inUsePages
                    + " + claimedPages " + claimedPages);
        }
        long claimed = 0;
        for (int k = 0; k < nclaims; k++) {
            claimed += claimPages[k];
            if (countAllocated(claimBase[k], claimPages[k]) != claimPages[k]) {
                throw new IllegalStateException("claimed run " + range(claimBase[k], claimPages[k]) + " is not in use");
            }
        }
        if (claimed != claimedPages) {
            throw new IllegalStateException("claims hold " + claimed + " pages, claimedPages " + claimedPages);
        }
        if (scavBits != scavengedPages) {
            throw new IllegalStateException("scavenged bits " + scavBits + " != scavengedPages " + scavengedPages);
        }
        if (firstFree < searchAddr) {
            throw new IllegalStateException("free page at " + hex(firstFree) + " below searchAddr " + hex(searchAddr));
        }
        if (highestCandidate >= scavAddr) {
            throw new IllegalStateException("free unscavenged page at " + hex(highestCandidate) + " at or above scavAddr "
                    + hex(scavAddr));
        }
    }

    // =====================================================================================
    // Helpers
    // =====================================================================================

    private void debugCheck() {
        if (CHECK_INVARIANTS) {
            checkInvariants();
        }
    }

    private void assertLocked() {
        if (CHECK_INVARIANTS && lock != null && !lock.isHeldByCurrentThread()) {
            throw new IllegalStateException("page allocator used without the heap lock by " + Thread.currentThread());
        }
        assert lock == null || lock.isHeldByCurrentThread() : "heap lock not held";
    }

    private static long chunkBase(long ci) {
        return ci << CHUNK_SHIFT;
    }

    private static int chunkOff(long ci) {
        return (int) ((ci * CHUNK_LONGS) & Sparse.LEAF_MASK);
    }

    private static int pageInChunk(long addr) {
        return (int) (addr >>> PAGE_SHIFT) & (CHUNK_PAGES - 1);
    }

    private static IllegalStateException badSummary(String detail) {
        return new IllegalStateException("page allocator: bad summary data: " + detail);
    }

    static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }

    static String range(long base, long npages) {
        return "[" + hex(base) + ", " + hex(base + npages * PAGE_SIZE) + ") (" + npages + " pages)";
    }

    /**
     * A sparse array of longs over an index space of up to 2^(9+9+k) entries: a top array, middle
     * arrays of 512 references and leaf pages of 512 longs, both created on first write. Reads of
     * absent pages give 0. Blocks of 8 aligned entries always share one leaf page.
     */
    static final class Sparse {
        static final int LEAF_BITS = 9;
        static final int MID_BITS = 9;
        static final long LEAF_MASK = (1L << LEAF_BITS) - 1;
        private static final int MID_MASK = (1 << MID_BITS) - 1;

        final long[][][] top;

        Sparse(int indexBits) {
            top = new long[1 << Math.max(0, indexBits - LEAF_BITS - MID_BITS)][][];
        }

        /** The leaf page holding index {@code i}, or null. */
        long[] leaf(long i) {
            long[][] mid = top[(int) (i >>> (LEAF_BITS + MID_BITS))];
            return mid == null ? null : mid[(int) (i >>> LEAF_BITS) & MID_MASK];
        }

        long[] leafForWrite(long i) {
            int t = (int) (i >>> (LEAF_BITS + MID_BITS));
            long[][] mid = top[t];
            if (mid == null) {
                mid = top[t] = new long[1 << MID_BITS][];
            }
            int m = (int) (i >>> LEAF_BITS) & MID_MASK;
            long[] p = mid[m];
            if (p == null) {
                p = mid[m] = new long[1 << LEAF_BITS];
            }
            return p;
        }

        long get(long i) {
            long[] p = leaf(i);
            return p == null ? 0 : p[(int) (i & LEAF_MASK)];
        }

        void set(long i, long v) {
            if (v == 0) {
                long[] p = leaf(i);
                if (p != null) {
                    p[(int) (i & LEAF_MASK)] = 0;
                }
                return;
            }
            leafForWrite(i)[(int) (i & LEAF_MASK)] = v;
        }
    }
}
