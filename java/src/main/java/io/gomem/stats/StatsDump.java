package io.gomem.stats;

import java.util.List;
import java.util.Locale;

/**
 * Where a heap's in-use memory is, per size class, in the spirit of mimalloc's and jemalloc's
 * stats printers: spans, objects in use, bytes in use and the fragmentation inside spans. The
 * rows add up to {@link #total()}, and its span bytes equal the heap's bytes in spans.
 *
 * @param classes    one row per size class that has spans or objects
 * @param large      objects larger than 32 KiB (each in its own span)
 * @param total      the sum of every row
 * @param heapInuseSpanBytes the heap's own count of bytes in spans (pages in use × 8 KiB), which
 *                   {@code total().spanBytes()} must equal
 * @param arenas     the arenas' share: their chunks are large spans, inside {@link #large()}
 */
public record StatsDump(List<Row> classes, Row large, Row total, long heapInuseSpanBytes, Arenas arenas) {

    /**
     * Arenas ({@code heap.ofConfined()}, {@code ofShared()}): their chunks count among the large
     * objects above; this line says how many bytes of those are arenas'.
     *
     * @param open    arenas open
     * @param inuse   bytes of chunks open arenas hold
     * @param cached  bytes of closed arenas' chunks kept for the next arenas
     * @param faulted bytes of closed arenas' chunks faulted and quarantined (gomem.debug=arenafault)
     */
    public record Arenas(long open, long inuse, long cached, long faulted) {
    }

    /**
     * One line of the dump.
     *
     * @param objectSize  slot size (0 for the large and total rows)
     * @param spans       spans of this class
     * @param spanBytes   bytes of those spans
     * @param objects     objects in use
     * @param bytesInUse  bytes of objects in use (slot sizes; large objects' own sizes)
     */
    public record Row(String name, long objectSize, long spans, long spanBytes, long objects, long bytesInUse) {
        /** Share of span bytes not holding a live object. */
        public double fragmentation() {
            return spanBytes == 0 ? 0 : 1.0 - (double) bytesInUse / spanBytes;
        }
    }

    public StatsDump {
        classes = List.copyOf(classes);
    }

    /** Throws IllegalStateException if the rows do not add up to the totals. */
    public StatsDump checkTotals() {
        long spans = large.spans;
        long spanBytes = large.spanBytes;
        long objects = large.objects;
        long bytes = large.bytesInUse;
        for (Row r : classes) {
            spans += r.spans;
            spanBytes += r.spanBytes;
            objects += r.objects;
            bytes += r.bytesInUse;
        }
        if (spans != total.spans || spanBytes != total.spanBytes || objects != total.objects || bytes != total.bytesInUse) {
            throw new IllegalStateException("stats dump rows do not add up to the total line");
        }
        if (total.spanBytes != heapInuseSpanBytes) {
            throw new IllegalStateException("stats dump span bytes " + total.spanBytes + " != heap bytes in spans "
                    + heapInuseSpanBytes);
        }
        return this;
    }

    /** The dump as text: a header, one line per row, the total line. */
    public String toText() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%-8s %8s %8s %12s %10s %12s %7s%n",
                "class", "size", "spans", "span bytes", "objects", "bytes", "frag"));
        for (Row r : classes) {
            line(sb, r);
        }
        line(sb, large);
        line(sb, total);
        sb.append(String.format(Locale.ROOT, "arenas: %d open, %d B in their chunks, %d B of chunks cached,"
                + " %d B faulted (chunks count among the large spans above)%n",
                arenas.open, arenas.inuse, arenas.cached, arenas.faulted));
        return sb.toString();
    }

    private static void line(StringBuilder sb, Row r) {
        sb.append(String.format(Locale.ROOT, "%-8s %8d %8d %12d %10d %12d %6.1f%%%n",
                r.name, r.objectSize, r.spans, r.spanBytes, r.objects, r.bytesInUse, 100 * r.fragmentation()));
    }
}
