package io.gomem.heap;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Go's user arenas ({@code arena.go}, Go 1.20) as {@link Arena}s: {@code heap.ofConfined()} and
 * {@code heap.ofShared()} behave as the JDK's arenas of the same name, with memory bump-allocated
 * from chunks of the heap and given back all at once on {@link #close()}.
 *
 * <h2>What it owns</h2>
 * <ul>
 *   <li>A JDK arena of the same kind ({@link #jdk}): its scope is every segment's scope, so
 *       confinement, {@code isAlive()}, the exceptions after close and the handshake of a shared
 *       close are the JDK's own. Each segment is a slice of {@link #all}, one segment over all of
 *       memory in that scope, made once per arena (no restricted call per allocation).</li>
 *   <li>Chunks: large spans of the heap whose object is marked as an arena's
 *       ({@link MSpan#largeState} {@code 2}), so that no {@code free} can take them. The first is
 *       {@link #FIRST_CHUNK} (64 KiB: a request's worth, not Go's 8 MiB, which a small arena
 *       should not pin); each next one doubles, up to Go's chunk size {@link #MAX_CHUNK} (8 MiB),
 *       so an arena of n bytes takes O(log n) chunks below 8 MiB and wastes under half. Objects
 *       are bump-allocated inside the current chunk; an allocation over {@link #MAX_BUMP} (a
 *       quarter chunk, as Go) or aligned over a page gets a span of its own.</li>
 *   <li>The heap's chunk cache and registry of open arenas ({@link Chunks}): a closed arena's
 *       chunks wait there for the next arena (up to {@link #STRIPE_BUDGET} per stripe); the
 *       background thread gives back to the heap the chunks of a stripe no arena took from for a
 *       period, and {@code releaseMemory} all of them, so that the scavenger returns them to the
 *       OS like any free page.</li>
 * </ul>
 *
 * <h2>Invariants</h2>
 * <ul>
 *   <li>Every chunk or span belongs to exactly one of: one open arena ({@link #spans}), one
 *       stripe's cache, the heap (freed), or under {@code gomem.debug=arenafault} the quarantine
 *       (faulted, never reused). It leaves an arena only after the arena's JDK scope is closed,
 *       so no segment of the arena can reach it again.</li>
 *   <li>Memory handed out is zero: a chunk records where it may hold old data (an interval,
 *       {@link #dirtyStart} to {@link #dirtyEnd}; none for pages fresh from the kernel, Go's
 *       {@code needzero}), and an allocation clears only its part of that. A closing arena
 *       clears what it used of each chunk in one pass before the chunk is cached, so the next
 *       arena's allocations from it clear nothing.</li>
 * </ul>
 *
 * <h2>Guards</h2>
 * Bump state and {@link #spans}: the owner thread ({@link Confined}) or the arena's monitor
 * ({@link Shared}, held from its opening on); once closed, only the closing thread. {@link #held}:
 * written likewise, volatile for the statistics. {@link #prev}, {@link #next}: the stripe's
 * monitor. A stripe's fields: its monitor. Under {@code gomem.checkInvariants} each method that
 * reads or writes the bump state asserts it ({@link #assertOwner}), and the stripe's methods that
 * expect its monitor assert that.
 */
public abstract sealed class UserArena implements Arena permits UserArena.Confined, UserArena.Shared {
    /** The first chunk of an arena: 64 KiB (8 pages). */
    static final long FIRST_CHUNK = 64 << 10;
    /** The largest chunk: 8 MiB, Go's {@code userArenaChunkBytes}. */
    static final long MAX_CHUNK = 8 << 20;
    /** Allocations above this (Go's {@code userArenaChunkMaxAllocBytes}, a quarter chunk) get their own span. */
    static final long MAX_BUMP = MAX_CHUNK / 4;
    /** Alignments above this get their own span too. */
    static final long MAX_BUMP_ALIGN = SizeClasses.PAGE_SIZE;
    /** Chunk sizes: 64 KiB × 2^k, k < this. */
    static final int CHUNK_CLASSES = 8;
    /** Bytes of closed arenas' chunks one stripe keeps for the next arenas; more go back to the heap. */
    static final long STRIPE_BUDGET = MAX_CHUNK;
    /** Largest request: the heap's largest object. */
    static final long MAX_ALLOC = MHeap.MAX_ALLOC;

    /** {@code gomem.debug=arenafault}: a closed arena's chunks are faulted and never reused. */
    static final boolean ARENAFAULT = io.gomem.internal.Options.debugFlag("arenafault");

    /** What the arenas need from the heap's entry point ({@link HeapSegments} passes {@link Malloc}'s). */
    interface Source {
        /** A new span holding one object of {@code bytes} aligned to {@code align}, marked as an arena's. */
        MSpan allocChunk(long bytes, long align);

        /** Gives an arena's span back to the heap. */
        void freeChunk(MSpan s);

        /** Faults an arena's span (PROT_NONE) for good: {@code gomem.debug=arenafault}. */
        void faultChunk(MSpan s);
    }

    final Chunks chunks;
    final Chunks.Stripe stripe;
    final Arena jdk;
    final MemorySegment all;
    /** The thread that opened the arena: the only one that may use a confined arena. */
    final Thread owner;

    // Bump state (see Guards): [cur, end) is free in the current chunk; [dirtyStart, dirtyEnd) of
    // it may hold old data (absolute addresses; empty when both are 0).
    private long cur;
    private long end;
    private long dirtyStart;
    private long dirtyEnd;
    private MSpan chunk;
    private long nextChunk = FIRST_CHUNK;
    /** {@link #marks}' first mark of a span of one object (never cached: back to the heap on close). */
    private static final long OWN_SPAN = -1;
    /** Marks per span in {@link #marks}: dirty start, dirty end (offsets from its base), bytes used. */
    private static final int MARKS = 3;
    /**
     * Every span this arena holds, and for each its marks: where it may hold old data (an
     * interval of offsets from its base, empty when equal; {@link #OWN_SPAN} for a span of its
     * own) and how far this arena bump-allocated in it.
     */
    private MSpan[] spans = new MSpan[2];
    private long[] marks = new long[2 * MARKS];
    private int nspans;
    /** Bytes of the spans this arena holds (for MemStats). */
    volatile long held;
    boolean closed;
    /** With {@link #CHECK} only: the thread that closed the arena, the one that may release it. */
    private Thread closer;
    /** {@code gomem.checkInvariants}: assert the guards of the bump state and of the stripes. */
    static final boolean CHECK = io.gomem.internal.Options.CHECK_INVARIANTS.booleanValue();
    /** The stripe's list of open arenas. */
    UserArena prev;
    UserArena next;

    @SuppressWarnings("restricted") // gomem is a native-access module: see the README
    UserArena(Chunks chunks, Arena jdk) {
        this.chunks = chunks;
        this.stripe = chunks.stripe();
        this.jdk = jdk;
        this.all = MemorySegment.NULL.reinterpret(Long.MAX_VALUE, jdk, null);
        this.owner = Thread.currentThread();
    }

    @Override
    public final MemorySegment.Scope scope() {
        return jdk.scope();
    }

    /** The JDK's check of an allocation's arguments, with its messages. */
    static void checkArguments(long byteSize, long byteAlignment) {
        if (byteSize < 0) {
            throw new IllegalArgumentException("The provided allocation size is negative: " + byteSize);
        }
        if (byteAlignment <= 0 || (byteAlignment & (byteAlignment - 1)) != 0) {
            throw new IllegalArgumentException("Invalid alignment constraint : " + byteAlignment);
        }
    }

    static IllegalStateException alreadyClosed() {
        return new IllegalStateException("Already closed");
    }

    /**
     * With {@link #CHECK}: the caller may use the bump state: the owner thread of a confined
     * arena, the holder of a shared one's monitor; once closed, the thread that closed it.
     */
    final void assertOwner() {
        if (CHECK) {
            Thread t = Thread.currentThread();
            boolean ok = closed ? t == closer : this instanceof Shared ? Thread.holdsLock(this) : t == owner;
            if (!ok) {
                throw new IllegalStateException("arena: bump state used by " + t + ", not by "
                        + (closed ? "the thread that closed it, " + closer : this instanceof Shared
                        ? "a holder of its monitor" : "its owner, " + owner));
            }
        }
    }

    /** With {@link #CHECK}: records who closed the arena (call as {@link #closed} is set). */
    final void closedBy(Thread t) {
        if (CHECK) {
            closer = t;
        }
    }

    /** A zeroed segment of {@code size} bytes aligned to {@code align} (both checked), in this arena's scope. */
    final MemorySegment bump(long size, long align) {
        assertOwner(); // nothing when the flag is off: a static final false
        long start = (cur + align - 1) & -align;
        long need = Math.max(size, 1); // a zero-size segment still gets its own address
        if (need > end - start || align > MAX_BUMP_ALIGN) { // compared as a difference: no overflow for any size
            return refill(size, align);
        }
        cur = start + need;
        if (start < dirtyEnd && start + size > dirtyStart) { // clear what of it may hold old data
            long from = Math.max(start, dirtyStart);
            Memclr.clear(from, Math.min(start + size, dirtyEnd) - from);
        }
        return all.asSlice(start, size);
    }

    /** The slow path: a span of its own for a big or over-aligned request, else a new chunk. */
    private MemorySegment refill(long size, long align) {
        assertOwner();
        if (size > MAX_ALLOC || align > MAX_ALLOC) {
            throw new OutOfMemoryError("arena allocation of " + size + " B aligned to " + align
                    + ": more than the heap's largest object, " + MAX_ALLOC + " B (8 TiB)");
        }
        if (size > MAX_BUMP || align > MAX_BUMP_ALIGN) {
            MSpan s = chunks.source().allocChunk(Math.max(size, 1), Math.max(align, SizeClasses.PAGE_SIZE));
            long p = s.base + s.largeOffset;
            add(s, OWN_SPAN, OWN_SPAN);
            if (s.needZero) {
                Memclr.clear(p, size);
            }
            return all.asSlice(p, size);
        }
        retireCurrent();
        long bytes = Math.max(nextChunk, Long.highestOneBit(size + align - 1) << 1); // a power of two, fits size at align
        nextChunk = Math.min(bytes << 1, MAX_CHUNK);
        if (stripe.take(bytes, this)) {
            return bump(size, align); // installed by take
        }
        MSpan s = chunks.source().allocChunk(bytes, SizeClasses.PAGE_SIZE);
        install(s, 0, s.needZero ? bytes : 0);
        return bump(size, align);
    }

    /** Makes {@code s} (a chunk, dirty in [ds, de) from its base) the current chunk. */
    final void install(MSpan s, long ds, long de) {
        assertOwner();
        add(s, ds, de);
        chunk = s;
        cur = s.base;
        end = s.base + ((long) s.npages << SizeClasses.PAGE_SHIFT);
        dirtyStart = ds == de ? 0 : s.base + ds;
        dirtyEnd = ds == de ? 0 : s.base + de;
    }

    private void add(MSpan s, long ds, long de) {
        assertOwner();
        if (nspans == spans.length) {
            spans = java.util.Arrays.copyOf(spans, nspans * 2);
            marks = java.util.Arrays.copyOf(marks, nspans * 2 * MARKS);
        }
        spans[nspans] = s;
        marks[nspans * MARKS] = ds;
        marks[nspans * MARKS + 1] = de;
        marks[nspans * MARKS + 2] = 0;
        nspans++;
        held += (long) s.npages << SizeClasses.PAGE_SHIFT;
    }

    /** Records how far the current chunk was written. */
    private void retireCurrent() {
        assertOwner();
        if (chunk != null) {
            for (int i = nspans - 1; i >= 0; i--) {
                if (spans[i] == chunk) {
                    marks[i * MARKS + 2] = cur - chunk.base;
                    break;
                }
            }
            chunk = null;
        }
        cur = end = dirtyStart = dirtyEnd = 0;
    }

    /**
     * Before a chunk goes to the cache: clears what this arena used of it, in one pass (cheaper
     * than the next arena's clear per allocation, and done while the lines are in this core's
     * cache), and narrows its dirty interval to what old data is left past that.
     */
    private void clearUsed(int i) {
        assertOwner();
        long ds = marks[i * MARKS];
        long de = marks[i * MARKS + 1];
        long used = marks[i * MARKS + 2];
        if (ds == OWN_SPAN) {
            return;
        }
        if (used > 0) {
            Memclr.clear(spans[i].base, used);
        }
        ds = Math.max(ds, used);
        if (ds >= de) {
            ds = de = 0;
        }
        marks[i * MARKS] = ds;
        marks[i * MARKS + 1] = de;
    }

    /**
     * After the JDK scope closed (no segment of this arena can be used any more): every span goes
     * to the stripe's cache, the heap or the quarantine. Closing thread only.
     */
    final void release() {
        assertOwner();
        retireCurrent();
        MSpan[] s = spans;
        int n = nspans;
        if (!ARENAFAULT) {
            for (int i = 0; i < n; i++) {
                clearUsed(i);
            }
        }
        stripe.closed(this, s, marks, n);
        for (int i = 0; i < n; i++) {
            if (s[i] != null) { // not cached: back to the heap, or faulted
                if (ARENAFAULT) {
                    chunks.source().faultChunk(s[i]);
                } else {
                    chunks.source().freeChunk(s[i]);
                }
            }
        }
        spans = null;
        marks = null;
        nspans = 0;
        held = 0;
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "[gomem arena of " + owner + ", " + held + " B held"
                + (closed ? ", closed" : "") + "]";
    }

    /** {@code heap.ofConfined()}: one thread allocates, accesses and closes, as {@code Arena.ofConfined()}. */
    static final class Confined extends UserArena {
        /** Whether the first allocation registered {@link #FIRST}. Owner only. */
        private boolean allocated;

        Confined(Chunks chunks) {
            super(chunks, Arena.ofConfined());
        }

        @Override
        public MemorySegment allocate(long byteSize, long byteAlignment) {
            checkArguments(byteSize, byteAlignment);
            if (Thread.currentThread() != owner) {
                throw new WrongThreadException("Attempted access outside owning thread");
            }
            if (closed) {
                throw alreadyClosed();
            }
            if (!allocated) {
                firstAllocation();
            }
            return bump(byteSize, byteAlignment);
        }

        /**
         * The JDK's confined arena registers a cleanup (the free of the block) with every
         * allocation, and its session runs the first cleanup it was given first and the others
         * last-in-first-out; so a program's own cleanups ({@code reinterpret(.., arena, cleanup)})
         * added after an allocation run last-in-first-out. One empty cleanup at the first
         * allocation keeps that order here (not at creation: cleanups added before any
         * allocation run first-given-first in the JDK's arena too).
         */
        @SuppressWarnings("restricted") // gomem is a native-access module: see the README
        private void firstAllocation() {
            assertOwner();
            allocated = true;
            MemorySegment.NULL.reinterpret(jdk, FIRST);
        }

        private static final java.util.function.Consumer<MemorySegment> FIRST = s -> { };

        @Override
        public void close() {
            try {
                jdk.close(); // the JDK's checks: owner thread (WrongThreadException), open, not acquired by a call
            } catch (RuntimeException | Error e) {
                if (jdk.scope().isAlive() || closed) {
                    throw e; // refused (nothing changed), or closed before
                }
                closedBy(Thread.currentThread());
                closed = true; // closed, and a cleanup action of a reinterpreted segment threw: rethrown after
                release();
                throw e;
            }
            closedBy(Thread.currentThread());
            closed = true;
            release();
        }
    }

    /**
     * {@code heap.ofShared()}: any thread allocates, accesses and closes, as {@code Arena.ofShared()};
     * allocation and close take the arena's monitor, and close is the JDK's handshake.
     */
    static final class Shared extends UserArena {
        Shared(Chunks chunks) {
            super(chunks, Arena.ofShared());
        }

        @Override
        public MemorySegment allocate(long byteSize, long byteAlignment) {
            checkArguments(byteSize, byteAlignment);
            synchronized (this) {
                if (closed) {
                    throw alreadyClosed();
                }
                return bump(byteSize, byteAlignment);
            }
        }

        @Override
        public void close() {
            Throwable thrown = null;
            synchronized (this) {
                try {
                    jdk.close(); // throws if closed, or if a downcall holds the scope: nothing changed then
                } catch (RuntimeException | Error e) {
                    if (jdk.scope().isAlive() || closed) {
                        throw e;
                    }
                    thrown = e; // closed, and a cleanup action of a reinterpreted segment threw: rethrown after
                }
                closedBy(Thread.currentThread());
                closed = true;
            }
            release(); // no allocation can start now: they see closed under the monitor
            if (thrown instanceof RuntimeException r) {
                throw r;
            } else if (thrown != null) {
                throw (Error) thrown;
            }
        }
    }

    /**
     * The heap's arena chunks: a cache of closed arenas' chunks and the registry of open arenas,
     * striped by thread (each stripe under its own monitor) so that arenas opened and closed on
     * different threads seldom meet. Owned by {@link HeapSegments}, one per heap, which makes its
     * source whole first. Guards: the fields are final; each stripe is under its own monitor, and a
     * stripe knows no Chunks (what it drains goes back through {@link #source()}).
     */
    static final class Chunks {
        private final Source source;
        private final Stripe[] stripes;

        /** {@code source}: where chunks come from and go back to, whole before this is made ({@link HeapSegments}). */
        Chunks(Source source, int stripes) {
            if (source == null) {
                throw new NullPointerException("source");
            }
            this.source = source;
            int n = Integer.highestOneBit(Math.max(1, stripes));
            this.stripes = new Stripe[n];
            for (int i = 0; i < n; i++) {
                this.stripes[i] = new Stripe();
            }
        }

        /** Where chunks come from and go back to. */
        Source source() {
            return source;
        }

        Stripe stripe() {
            return stripes[(int) Thread.currentThread().threadId() & (stripes.length - 1)];
        }

        /** A new open arena of the calling thread; IllegalStateException once the heap is closing or closed. */
        UserArena open(boolean shared) {
            UserArena a = shared ? new Shared(this) : new Confined(this);
            boolean opened;
            synchronized (a) { // a shared arena's bump state is its monitor's from the start (a first chunk may be installed)
                opened = a.stripe.opened(a);
            }
            if (!opened) {
                a.jdk.close();
                throw Procs.closedException();
            }
            return a;
        }

        /**
         * For the heap's close: refuses (IllegalStateException, nothing changed) while a confined
         * arena of a live thread is open, since only that thread may close it; otherwise stops
         * every stripe from opening arenas, closes every open shared arena (its segments throw
         * from then on) and forgets the confined arenas of ended threads (no thread can use
         * their segments). The heap then unmaps all of it.
         */
        void closeAll() {
            java.util.List<UserArena> open = new java.util.ArrayList<>();
            for (Stripe s : stripes) {
                synchronized (s) {
                    s.closing = true;
                    for (UserArena a = s.open; a != null; a = a.next) {
                        open.add(a);
                    }
                }
            }
            java.util.List<String> live = new java.util.ArrayList<>();
            for (UserArena a : open) {
                if (a instanceof Confined && a.owner.isAlive()) {
                    live.add(a.owner.toString());
                }
            }
            if (!live.isEmpty()) {
                reopen();
                throw new IllegalStateException("close refused: " + live.size() + " confined arena(s) still open (of "
                        + String.join(", ", live) + "): their threads must close them first");
            }
            for (UserArena a : open) {
                if (a instanceof Shared) {
                    try {
                        a.close();
                    } catch (RuntimeException e) {
                        // closed meanwhile by its own code, or a cleanup action threw after the close: closed either
                        // way, unless a native call holds its scope (the JDK refuses the close then): so does the heap
                        if (a.jdk.scope().isAlive()) {
                            reopen();
                            throw new IllegalStateException("close refused: a shared arena's scope is held by a native"
                                    + " call (" + e.getMessage() + "); arenas closed before it stay closed", e);
                        }
                    }
                }
            }
        }

        /** After a refused heap close: arenas may open again. */
        void reopen() {
            for (Stripe s : stripes) {
                synchronized (s) {
                    s.closing = false;
                }
            }
        }

        /** Gives every cached chunk back to the heap (releaseMemory, the hard limit's retry). */
        void releaseCached() {
            for (Stripe s : stripes) {
                freeAll(s.drain(true));
            }
        }

        /** The background thread's period: chunks of stripes no arena took from since the last period go back to the heap. */
        void trim() {
            for (Stripe s : stripes) {
                freeAll(s.drain(false));
            }
        }

        private void freeAll(java.util.List<MSpan> out) {
            if (!out.isEmpty()) {
                Source to = source();
                for (MSpan s : out) {
                    to.freeChunk(s);
                }
            }
        }

        /** {open arenas, bytes they hold, bytes cached, bytes faulted (arenafault)}: each stripe read under its monitor. */
        long[] figures() {
            long[] r = new long[4];
            for (Stripe s : stripes) {
                synchronized (s) {
                    for (UserArena a = s.open; a != null; a = a.next) {
                        r[0]++;
                        r[1] += a.held;
                    }
                    r[2] += s.cachedBytes;
                    r[3] += s.faultedBytes;
                }
            }
            return r;
        }

        /** One stripe: its open arenas and cached chunks; every field under its monitor. */
        static final class Stripe {
            private UserArena open;
            private boolean closing;
            private final MSpan[][] cached = new MSpan[CHUNK_CLASSES][];
            /** Each cached chunk's dirty interval: start and end offsets, two longs per chunk. */
            private final long[][] cachedDirty = new long[CHUNK_CLASSES][];
            private final int[] count = new int[CHUNK_CLASSES];
            private long cachedBytes;
            private long faultedBytes;
            /** Whether an arena took a chunk since the last {@link #drain}. */
            private boolean used;

            /** Registers a new arena and, if one is cached, installs a first chunk in it (one monitor for both). */
            synchronized boolean opened(UserArena a) {
                if (closing) {
                    return false;
                }
                a.next = open;
                if (open != null) {
                    open.prev = a;
                }
                open = a;
                if (count[0] > 0) {
                    installFrom(0, a);
                }
                return true;
            }

            /** Pops a cached chunk of class {@code k} into arena {@code a} (monitor held). */
            private void installFrom(int k, UserArena a) {
                if (CHECK && !Thread.holdsLock(this)) {
                    throw new IllegalStateException("arena stripe: a cached chunk taken without the stripe's monitor");
                }
                used = true;
                int n = --count[k];
                MSpan s = cached[k][n];
                cached[k][n] = null;
                cachedBytes -= FIRST_CHUNK << k;
                a.install(s, cachedDirty[k][2 * n], cachedDirty[k][2 * n + 1]);
                a.nextChunk = Math.min((FIRST_CHUNK << k) << 1, MAX_CHUNK);
            }

            /** Installs a cached chunk of exactly {@code bytes} in arena {@code a}; false if none is cached. */
            boolean take(long bytes, UserArena a) {
                int k = Long.numberOfTrailingZeros(bytes) - Long.numberOfTrailingZeros(FIRST_CHUNK);
                if (k < 0 || k >= CHUNK_CLASSES || bytes != FIRST_CHUNK << k) {
                    return false;
                }
                synchronized (this) {
                    used = true;
                    if (count[k] == 0) {
                        return false;
                    }
                    installFrom(k, a);
                    return true;
                }
            }

            /**
             * An arena closed (its JDK scope closed): unlinks it and caches what fits of its spans,
             * setting their entries in {@code spans} to null; the caller frees or faults the rest.
             */
            synchronized void closed(UserArena a, MSpan[] spans, long[] marks, int n) {
                if (a.prev != null) {
                    a.prev.next = a.next;
                } else if (open == a) {
                    open = a.next;
                }
                if (a.next != null) {
                    a.next.prev = a.prev;
                }
                a.prev = a.next = null;
                if (ARENAFAULT) {
                    for (int i = 0; i < n; i++) {
                        faultedBytes += (long) spans[i].npages << SizeClasses.PAGE_SHIFT;
                    }
                    return;
                }
                if (closing) {
                    return; // the heap is closing: everything goes back to it
                }
                for (int i = 0; i < n; i++) {
                    MSpan s = spans[i];
                    long bytes = (long) s.npages << SizeClasses.PAGE_SHIFT;
                    int k = Long.numberOfTrailingZeros(bytes) - Long.numberOfTrailingZeros(FIRST_CHUNK);
                    if (marks[i * MARKS] == OWN_SPAN || k < 0 || k >= CHUNK_CLASSES || bytes != FIRST_CHUNK << k
                            || cachedBytes + bytes > STRIPE_BUDGET) {
                        continue;
                    }
                    if (cached[k] == null || count[k] == cached[k].length) {
                        int cap = cached[k] == null ? 4 : cached[k].length * 2;
                        cached[k] = cached[k] == null ? new MSpan[cap] : java.util.Arrays.copyOf(cached[k], cap);
                        cachedDirty[k] = cachedDirty[k] == null ? new long[2 * cap] : java.util.Arrays.copyOf(cachedDirty[k], 2 * cap);
                    }
                    cached[k][count[k]] = s;
                    cachedDirty[k][2 * count[k]] = marks[i * MARKS];
                    cachedDirty[k][2 * count[k] + 1] = marks[i * MARKS + 1];
                    count[k]++;
                    cachedBytes += bytes;
                    spans[i] = null;
                }
            }

            /**
             * Takes the cached chunks out, for the caller to give back to the heap (outside this
             * monitor): all of them, or (at a period's end) those of an unused stripe.
             */
            java.util.List<MSpan> drain(boolean all) {
                java.util.List<MSpan> out = new java.util.ArrayList<>();
                synchronized (this) {
                    if (!all && used) {
                        used = false;
                        return out;
                    }
                    for (int k = 0; k < CHUNK_CLASSES; k++) {
                        for (int i = 0; i < count[k]; i++) {
                            out.add(cached[k][i]);
                            cached[k][i] = null;
                        }
                        count[k] = 0;
                    }
                    cachedBytes = 0;
                }
                return out;
            }
        }
    }
}
