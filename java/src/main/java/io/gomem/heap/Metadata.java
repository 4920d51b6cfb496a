package io.gomem.heap;

/**
 * Java-heap bytes of the heap's metadata (interim layout model; replaced by the measured one).
 */
final class Metadata {
    private Metadata() {
    }

    private static long array(long elems, int elemBytes) {
        return align(16 + elems * elemBytes);
    }

    private static long align(long n) {
        return (n + 7) & ~7L;
    }

    /** One span record with its arrays. */
    static long spanBytes(MSpan s) {
        long n = 136 + array(s.allocBits.length, 8) + array(s.freeBits.length, 8);
        if (s.tinyMasks != null) {
            n += array(s.tinyMasks.length, 4);
        }
        return n;
    }

    /** One P's cache with its arrays. */
    static long cacheBytes() {
        int nsc = SizeClasses.NUM_SPAN_CLASSES + 1;
        return 256 + array(nsc, 4) + array(65, 4);
    }

    /** One span class's central. */
    static long centralBytes() {
        return 128;
    }

    /** One arena's spans table. */
    static long arenaBytes() {
        return 32 + array(8192, 4);
    }

    /** One page-allocator chunk's bitmaps and summary. */
    static long chunkBytes() {
        return 2 * 8 * 8 + 16;
    }
}
