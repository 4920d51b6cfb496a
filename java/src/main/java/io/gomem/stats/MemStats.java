package io.gomem.stats;

import java.util.List;

/**
 * A snapshot of a heap's memory statistics, with the fields of Go's {@code runtime.MemStats}
 * (same names, same meaning where the two runtimes agree) plus the OS layer's view.
 *
 * <p>Every snapshot satisfies, also when taken while other threads allocate and free:
 * <ul>
 *   <li>{@code heapIdle == heapSys - heapInuse}</li>
 *   <li>{@code heapReleased <= heapIdle}</li>
 *   <li>{@code heapObjects == mallocs - frees}</li>
 *   <li>{@code sys == heapSys + mSpanSys + mCacheSys + otherSys}</li>
 *   <li>{@code mappedReady == sys - heapReleased}, where {@code mappedReady} is the heap memory
 *       the OS layer holds Ready plus the allocator's metadata (which lives on the Java heap and
 *       is always ready)</li>
 * </ul>
 * {@link #checkInvariants()} checks them.
 *
 * <p>Counting as Go does: a small object counts from its allocation to its free, and a free is
 * counted when its span is swept (by the span's owner, or the background thread within a
 * second; {@code GoHeap.memStatsSwept()} sweeps first, so frees done before it are in); objects
 * under 16 bytes that share a tiny block count as a malloc and a free at once, and the block
 * counts as one object while any of them is live. Each side of every invariant above comes from
 * a different count (HeapObjects from a gauge of live objects, Mallocs and Frees from per-class
 * counts; HeapIdle from the page allocator, HeapSys from the mapped bytes; Sys from the OS
 * layer), so a check can fail.
 *
 * @param heapAlloc     bytes of live heap objects (slot sizes for small objects)
 * @param totalAlloc    cumulative bytes allocated
 * @param heapSys       bytes of heap memory mapped from the OS (Prepared or Ready)
 * @param heapIdle      bytes of heap memory in no span
 * @param heapInuse     bytes of heap memory in spans
 * @param heapReleased  bytes of heap memory returned to the OS (Prepared; includes mapped memory never used)
 * @param heapObjects   live heap objects
 * @param mallocs       cumulative objects allocated
 * @param frees         cumulative objects freed
 * @param mSpanInuse    bytes of span structures in use (Java heap, estimated from their layout)
 * @param mSpanSys      bytes of span structures held, in use or pooled
 * @param mCacheInuse   bytes of per-P cache structures
 * @param mCacheSys     bytes of per-P cache structures held
 * @param otherSys      bytes of other metadata (spans table, page allocator bitmaps and summaries)
 * @param sys           total bytes obtained: the sum of the four parts above
 * @param mappedReady   bytes Ready: heap memory the OS layer holds Ready, plus all metadata
 * @param osReserved    heap bytes the OS layer holds Reserved (address space only)
 * @param osPrepared    heap bytes the OS layer holds Prepared
 * @param osReady       heap bytes the OS layer holds Ready
 * @param memoryLimit   the soft memory limit on mapped-ready bytes in force (Long.MAX_VALUE if none)
 * @param arenas        arenas open ({@code heap.ofConfined()}, {@code ofShared()})
 * @param arenaInuse    bytes of the chunks open arenas hold (part of heapAlloc: a chunk counts as a large object)
 * @param arenaCached   bytes of closed arenas' chunks cached for the next arenas (part of heapAlloc too)
 * @param arenaFaulted  bytes of closed arenas' chunks faulted and quarantined ({@code gomem.debug=arenafault}; OS Reserved)
 * @param bySize        per size class: size, mallocs, frees (class 1 first; tiny blocks in their 16-byte class)
 */
public record MemStats(
        long heapAlloc, long totalAlloc, long heapSys, long heapIdle, long heapInuse, long heapReleased,
        long heapObjects, long mallocs, long frees,
        long mSpanInuse, long mSpanSys, long mCacheInuse, long mCacheSys, long otherSys, long sys,
        long mappedReady, long osReserved, long osPrepared, long osReady, long memoryLimit,
        long arenas, long arenaInuse, long arenaCached, long arenaFaulted,
        List<SizeClassStats> bySize) {

    /** Allocation counts of one size class. */
    public record SizeClassStats(int size, long mallocs, long frees) {
        /** Live objects of this class. */
        public long live() {
            return mallocs - frees;
        }
    }

    public MemStats {
        bySize = List.copyOf(bySize);
    }

    /** Throws IllegalStateException naming the first invariant this snapshot breaks. */
    public MemStats checkInvariants() {
        check(heapIdle == heapSys - heapInuse, "HeapIdle " + heapIdle + " != HeapSys " + heapSys + " - HeapInuse " + heapInuse);
        check(heapReleased <= heapIdle, "HeapReleased " + heapReleased + " > HeapIdle " + heapIdle);
        check(heapObjects == mallocs - frees, "HeapObjects " + heapObjects + " != Mallocs " + mallocs + " - Frees " + frees);
        check(sys == heapSys + mSpanSys + mCacheSys + otherSys, "Sys " + sys + " is not the sum of its parts");
        check(mappedReady == sys - heapReleased, "mapped-ready " + mappedReady + " != Sys " + sys + " - HeapReleased " + heapReleased);
        check(heapSys == osPrepared + osReady, "HeapSys " + heapSys + " != OS Prepared " + osPrepared + " + Ready " + osReady);
        check(heapAlloc <= heapInuse, "HeapAlloc " + heapAlloc + " > HeapInuse " + heapInuse);
        check(arenas >= 0 && arenaInuse >= 0 && arenaCached >= 0 && arenaFaulted >= 0, "negative arena figures");
        long m = 0;
        long f = 0;
        for (SizeClassStats c : bySize) {
            check(c.frees <= c.mallocs, "class " + c.size + ": frees " + c.frees + " > mallocs " + c.mallocs);
            m += c.mallocs;
            f += c.frees;
        }
        check(m <= mallocs && f <= frees, "BySize totals exceed Mallocs/Frees");
        return this;
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new IllegalStateException("MemStats invariant broken: " + what);
        }
    }
}
