/**
 * The heap: Go's allocator hierarchy, one class per runtime component. This is the overview the
 * components' own comments point to (Go keeps its version at the top of {@code malloc.go}).
 *
 * <h2>Layers (each calls only the one below)</h2>
 * <pre>
 *   HeapCore      P slots, the allocate / free entry points, MemStats, close (io.gomem.GoHeap extends it)
 *   Background    one daemon thread for all heaps: idle-cache flush, sweep, scavenge
 *   MCache        per P: one span per span class + the tiny allocator + freed large spans kept; no lock
 *   MCentral      per span class: partial and full spans; its own lock (spins, then parks)
 *   MHeap         arenas, spans table, large objects; the heap lock (spins, then parks)
 *   Scavenger     returns free pages to the OS: paced, under the limits, on request
 *   PageAlloc     radix tree of chunk summaries; first fit; scavenged bits (heap lock)
 *   MSpan, SizeClasses   metadata
 *   io.gomem.os.OsMemory  Go's region states over mmap / madvise / munmap
 * </pre>
 *
 * <h2>Allocation</h2>
 * A request of at most 32 KiB is rounded up to one of 67 size classes ({@link
 * io.gomem.heap.SizeClasses}). The caller leases a P slot (a CAS; see {@link
 * io.gomem.heap.HeapCore}) and takes the next free slot of that P's {@link io.gomem.heap.MCache}
 * span for the class: count trailing zeros of the span's alloc cache. When the span is exhausted
 * the cache hands it back to its {@link io.gomem.heap.MCentral} and takes another (partial, or
 * new from the {@link io.gomem.heap.MHeap}) under one hold of the central's lock. Requests under
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
 * object set one bit and reach no other slot's). The slot is reused only
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
 * Every path that makes pages Ready goes through the Scavenger's limit check.
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
 * Each P counts the slots its spans handed out when a span leaves it (Go counts at refill), and
 * the large objects it serves from kept spans; sweeps count what they reclaim; a MemStats
 * snapshot holds every P lease (no allocation in flight), sweeps everything, and reads the page heap's and OS
 * layer's counters under the heap lock, where every OS transition of heap memory happens, so
 * the two agree to the byte.
 */
package io.gomem.heap;
