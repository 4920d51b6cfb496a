package io.gomem.cli;

import jdk.jfr.ValueDescriptor;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import picocli.CommandLine;
import picocli.CommandLine.ParameterException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The gomem events of a JFR recording, read once with {@link RecordingFile}: every
 * {@code io.gomem.MemStats} snapshot per heap (with whatever numeric fields the recording has),
 * the {@code io.gomem.OsTransition} events' times and calls, and totals of the other gomem events
 * (Scavenge, HeapGrow, SpanRefill per object size). Times are seconds since the recording's
 * first event of any kind.
 */
final class GomemRecording {
    static final String MEM_STATS = "io.gomem.MemStats";
    static final String OS_TRANSITION = "io.gomem.OsTransition";
    static final String SCAVENGE = "io.gomem.Scavenge";
    static final String HEAP_GROW = "io.gomem.HeapGrow";
    static final String SPAN_REFILL = "io.gomem.SpanRefill";
    static final String SIZE_CLASS = "io.gomem.SizeClass";

    /** One row of a heap's periodic per-class dump ({@code io.gomem.SizeClass}). */
    record ClassRow(String sizeClass, long objectSize, long spans, long spanBytes, long objects, long bytesInUse) {
    }

    /** One MemStats snapshot: when (epoch nanoseconds) and its numeric fields, in the event's order. */
    record Snapshot(long at, Map<String, Long> fields) {
    }

    /** One OS transition: when (epoch nanoseconds), which call, how many bytes. */
    record Transition(long at, String call, long length) {
    }

    /** A count and a byte total. */
    static final class Tally {
        long count;
        long bytes;

        void add(long n) {
            count++;
            bytes += n;
        }
    }

    final Path file;
    long events;
    long gomemEvents;
    private long first = Long.MAX_VALUE;
    private long last = Long.MIN_VALUE;
    final Map<Integer, List<Snapshot>> heaps = new LinkedHashMap<>();
    /** The MemStats fields the recording marks as byte amounts (@DataAmount). */
    final Set<String> byteFields = new HashSet<>();
    final List<Transition> transitions = new ArrayList<>();
    final Map<String, Tally> transitionsByCall = new TreeMap<>();
    final Map<String, Tally> scavengesByKind = new TreeMap<>();
    final Tally heapGrowth = new Tally();
    final Map<Long, Tally> refillsByObjectSize = new TreeMap<>();
    /** Per heap, the rows of its last per-class dump (one periodic emission: rows less than half a second apart). */
    final Map<Integer, List<ClassRow>> lastDump = new LinkedHashMap<>();
    private final Map<Integer, Long> lastDumpAt = new LinkedHashMap<>();

    private GomemRecording(Path file) {
        this.file = file;
    }

    /**
     * Reads {@code file}. A file that is missing or not a JFR recording is a usage error (exit 2),
     * reported as a bad value of the command's RECORDING parameter.
     */
    static GomemRecording read(CommandLine cl, Path file, Progress progress) {
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw new ParameterException(cl, "Invalid value for parameter 'RECORDING': "
                    + (Files.exists(file) ? "cannot read " : "no such file: ") + file);
        }
        GomemRecording r = new GomemRecording(file);
        try (RecordingFile in = new RecordingFile(file)) {
            while (in.hasMoreEvents()) {
                r.add(in.readEvent());
                if (r.events % 50_000 == 0) {
                    progress.update(-1, "reading " + file.getFileName() + ": " + r.events + " events");
                }
            }
        } catch (IOException e) {
            throw new ParameterException(cl, "Invalid value for parameter 'RECORDING': " + file
                    + " is not a readable JFR recording (" + e.getMessage() + ")");
        }
        return r;
    }

    private void add(RecordedEvent e) {
        events++;
        long at = nanos(e.getStartTime());
        first = Math.min(first, at);
        last = Math.max(last, at);
        String type = e.getEventType().getName();
        if (!type.startsWith("io.gomem.")) {
            return;
        }
        gomemEvents++;
        switch (type) {
            case MEM_STATS -> {
                Map<String, Long> fields = new LinkedHashMap<>();
                for (ValueDescriptor v : e.getFields()) {
                    boolean numeric = v.getTypeName().equals("long") || v.getTypeName().equals("int");
                    if (numeric && !List.of("startTime", "duration", "heap").contains(v.getName())) {
                        fields.put(v.getName(), e.getLong(v.getName()));
                        if ("jdk.jfr.DataAmount".equals(v.getContentType())) {
                            byteFields.add(v.getName());
                        }
                    }
                }
                int heap = e.hasField("heap") ? e.getInt("heap") : 0;
                heaps.computeIfAbsent(heap, h -> new ArrayList<>()).add(new Snapshot(at, fields));
            }
            case OS_TRANSITION -> {
                Transition t = new Transition(at, e.getString("call"), e.getLong("length"));
                transitions.add(t);
                transitionsByCall.computeIfAbsent(t.call(), c -> new Tally()).add(t.length());
            }
            case SCAVENGE -> scavengesByKind.computeIfAbsent(e.getString("kind"), k -> new Tally()).add(e.getLong("released"));
            case HEAP_GROW -> heapGrowth.add(e.getLong("mapped"));
            case SPAN_REFILL -> refillsByObjectSize.computeIfAbsent(e.getLong("objectSize"), s -> new Tally()).add(0);
            case SIZE_CLASS -> {
                int heap = e.getInt("heap");
                Long prev = lastDumpAt.get(heap);
                if (prev == null || at - prev > 500_000_000L) {
                    lastDump.put(heap, new ArrayList<>()); // a later emission: the dump starts again
                }
                lastDumpAt.put(heap, at);
                lastDump.get(heap).add(new ClassRow(e.getString("sizeClass"), e.getLong("objectSize"), e.getLong("spans"),
                        e.getLong("spanBytes"), e.getLong("objects"), e.getLong("bytesInUse")));
            }
            default -> {
            }
        }
    }

    private static long nanos(Instant t) {
        return t.getEpochSecond() * 1_000_000_000L + t.getNano();
    }

    /** Seconds from the recording's first event to {@code at}. */
    double seconds(long at) {
        return (at - first) / 1e9;
    }

    /** Seconds from the recording's first event to its last. */
    double length() {
        return events == 0 ? 0 : seconds(last);
    }

    /** The one-line error when the recording has no gomem event at all, or null. */
    String noGomemEvents() {
        return gomemEvents > 0 ? null : file + " has no gomem events (io.gomem.*) among its " + events
                + " events: record an application while it uses a GoHeap";
    }
}
