/**
 * The heap: Go's allocator hierarchy, one class per runtime component. This is the overview the
 * components' own comments point to (Go keeps its version at the top of {@code malloc.go}).
 *
 * <h2>Where each Go concept lives</h2>
 * One class per runtime component, named after Go's file; each opens with what it owns, its
 * invariants and what guards each field.
 * <pre>
 *   Go file          class          what it owns
 *   malloc.go        Malloc         the entry points: size routing, tiny / small / large, zeroing
 *                                   inside the lease, free, usableSize (the one io.gomem.GoHeap)
 *   proc.go          Procs          P slots (added under contention), leases, ownership, held Ps,
 *                                   idle flush, stop-the-world, close: who may touch heap memory now
 *   proc.go          HeldP          acquirep/releasep: a thread holding a P for a scope, the entry
 *   (acquirep)                      points of its owner path (GoHeap.Local)
 *   arena.go         UserArena      user arenas as java.lang.foreign.Arena: chunks, bump allocation,
 *                                   the chunk cache, the registry of open arenas
 *   mstats.go        MStats         counters read in consistent cuts without stopping the world;
 *                                   MemStats and the stats dump built from one cut
 *   mcache.go        MCache         per P: a span per span class, the tiny block, kept large spans
 *   mcentral.go      MCentral       per span class and set: partial and full spans, the sweep
 *   mheap.go         MHeap          arenas, the spans table, spans and large objects, heap lock
 *   mgcscavenge.go   Scavenger      free pages back to the OS: paced, under the limits, on request
 *   mpagealloc.go    PageAlloc      radix tree of chunk summaries; first fit; scavenged bits
 *   mpallocbits.go   PallocBits, PallocSum   a chunk's bitmaps and its summary
 *   mbitmap.go       MSpan          a span's slots: alloc bits, free marks, the sweep
 *   sizeclasses.go   SizeClasses    the 67 classes and their division magic
 *   memclr_amd64.s   Memclr         clearing (zeroing) and clobberfree's fill
 *   (background      Background     one daemon thread for all heaps: flush, sweep, scavenge
 *    goroutines)
 *   mem_linux.go     io.gomem.os.OsMemory   Go's region states over mmap / madvise / munmap
 * </pre>
 *
 * <h2>Layers (each calls only the ones below)</h2>
 * Top first, as {@code LayersTest} ranks them and checks on the compiled classes (jdeps); classes
 * in parentheses share their layer:
 * <pre>
 *   io.gomem.GoHeap (API) → HeapSegments (JDK 25 part) → Malloc, HeldP → UserArena (HeapMXBeans,
 *       Metadata) → Procs → MCache → MCentral → MHeap → Scavenger (the ports SpanSource,
 *       SpanTable) → PageAlloc (PallocBits, PallocSum) → io.gomem.os.OsMemory → io.gomem.bindings
 *   leaves, used by any layer above and calling none of them: MStats, MSpan, HeapEvents,
 *       Background; below those, SizeClasses, SpinLock, Memclr
 * </pre>
 * What flows up is published through something the lower layer is given, never by calling up:
 * the flat spans table through {@link io.gomem.heap.SpanTable}, the P table through
 * {@code Procs.Table}, an arena's chunks through {@code UserArena.Source}, a heap's periodic
 * work through {@code Background.Job}, its periodic MemStats event through
 * {@code HeapEvents.StatsSource}. Every component is built first and wired after
 * ({@link io.gomem.heap.Malloc#create}: the tables published, then the background thread and the
 * JFR event; the arenas' chunks are made by {@code HeapSegments} with a source that is whole),
 * so no {@code this} escapes a constructor: a held P's scope is made whole before {@code Procs} registers it
 * ({@code HeldP.open}), and the scavenger's sink under huge-page advice is built before the
 * scavenger, over the OS layer alone ({@code MHeap.HugeAdvice}).
 *
 * <h2>The two parts of the jar</h2>
 * Everything here but {@code UserArena} and {@code HeapSegments} is in the jar's JDK 17 base and
 * runs on every JDK; those two are in its JDK 25 part ({@code src/main/java25}), with the
 * segment and arena API, and attach to a heap at their first use ({@code Malloc.views}). The
 * heap's hot paths are the base's class files on JDK 25 too.
 *
 * <h2>Allocation</h2>
 * A request of at most 32 KiB is rounded up to one of 67 size classes ({@link
 * io.gomem.heap.SizeClasses}). The caller leases a P slot (a CAS; see {@code
 * Procs}) and takes the next free slot of that P's {@link io.gomem.heap.MCache}
 * span for the class: count trailing zeros of the span's alloc cache. When the span is exhausted
 * the cache hands it back to its {@link io.gomem.heap.MCentral} and takes another (partial, or
 * new from the {@link io.gomem.heap.MHeap}) under one hold of the central's lock. There are
 * several sets of centrals (jemalloc's arenas at the level of Go's mcentral): P i refills from
 * set i mod sets, and a span keeps its set for frees. A thread holding a P ({@code HeldP},
 * {@code GoHeap.local()}) skips the lease: its allocation is the cache's fast path alone. Requests under
 * 16 bytes that need no zeroing share 16-byte blocks (the tiny allocator). Larger requests get
 * their own run of 8 KiB pages from the page allocator, under the heap lock, unless the P keeps
 * the span of a freed large object of the same page count (up to 64 pages), which it then reuses
 * with no lock.
 *
 * <h2>Free: mark, then sweep</h2>
 * Go's collector decides what is free and sweeping reclaims it; here the caller decides, and the
 * same split keeps the free path lock-free and legal from any thread: {@code free} finds the span
 * through the spans table (O(1): one flat table over the heap's contiguous arenas), checks the
 * address is a live object's start (one multiply by the class's divMagic), and sets the
 * slot's bit in the span's free marks with one atomic OR (idempotent: racing frees of one
 * object set one bit and reach no other slot's). A free by the thread holding the P that caches
 * the span sets a bit in the span's local marks instead, with plain stores (mimalloc's local
 * free list beside its thread-free list); the owner's sweep folds both. The slot is reused only
 * after the span's owner sweeps it: the cache that holds it, in place, once the span is
 * exhausted; or its MCentral when the span is handed back or out. A span in the full set is armed so that its first free
 * queues it (lock-free) to move to the partial set; a span found with no live object goes back to
 * the heap, whose pages then serve any class.
 *
 * <h2>Memory and the OS</h2>
 * Arenas of 64 MiB are reserved (Reserved) and mapped in 4 MiB chunks (Prepared); pages freshly
 * mapped count as scavenged. Pages a span takes that were scavenged are made Ready before use.
 * The {@link io.gomem.heap.Scavenger} returns free pages with {@code sysUnused}: in the
 * background at about 1% of a CPU down to a goal (in-use + 10%, and 95% of the soft limit),
 * synchronously when an allocation would pass the soft limit, and all at once on
 * {@code releaseMemory}, which also returns the free OS pages inside spans that still hold
 * objects (Go returns only whole free spans). Only Ready memory is ever handed out: a span's
 * released pages are made Ready again (within the limits) before a cache uses it; a span freed
 * with released pages gives them to the page allocator as scavenged, never making them Ready.
 * Every path that makes pages Ready goes through the Scavenger's limit check. No system call that
 * returns memory to the OS or takes released memory back holds the heap lock or a central lock:
 * the pages are claimed (or held in a span no one else has) under the lock, and the call is made
 * with it dropped, announced so that the limit check and a reading of the counters wait for it
 * (MHeap's comment lists the calls that stay under the lock, and why).
 *
 * <h2>What double-free detection guarantees</h2>
 * Refused: a second free of an object whose first free has not been swept; a free of a slot
 * that is free (swept, not handed out again); a second free of a large or tiny object, until
 * its memory is reused. Not detectable without a generation count per slot: a second free after
 * the slot was handed out again frees the new object (as in C); a second free racing with the
 * sweep that reclaims the first may leave a mark that frees the slot's next object. No free,
 * legal or not, changes another slot's state.
 *
 * <h2>Counting</h2>
 * Counted on slow paths only, into {@code MStats}' counters: each P counts the slots its spans
 * handed out when a span leaves it (Go counts at refill) or when a reader flushes it; sweeps
 * count what they reclaim; the heap counts spans, large objects and their pages under its lock.
 * {@code memStats()} flushes every P it finds free (never waiting) and cuts the counters under
 * the heap lock, where every page-level figure changes: a consistent snapshot without stopping
 * the world or sweeping. {@code memStatsSwept()} first sweeps everything, visiting each P in
 * turn; {@code checkInvariants()} recounts from the spans what the counters say (Go's
 * {@code ReadMemStatsSlow}).
 */
package io.gomem.heap;
