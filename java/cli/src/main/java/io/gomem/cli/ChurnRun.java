package io.gomem.cli;

import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What one churn child measured, and the line protocol it reports it in on its stdout:
 * <pre>
 * baseline RSS_BYTES                 the process's RSS before the workload
 * phase NAME T_MS                    a phase starts
 * sample T_MS,PHASE,LIVE,RSS,INUSE,IDLE,RELEASED,LIMIT   (gomem's four fields empty for the others)
 * release-call MICROS                how long the allocator's release call took
 * note TEXT                          something to tell (refused allocations)
 * done T_MS                          the workload ended
 * </pre>
 * Times are milliseconds since the workload started. Also writes the merged runs as churn.csv.
 */
record ChurnRun(String allocator, long baselineRss, List<Sample> samples, List<PhaseMark> phases, long releaseCallMicros,
                long doneMs, List<String> notes) {

    static final String CSV_HEADER = "allocator,t_ms,phase,live_bytes,rss_bytes,heap_inuse,heap_idle,heap_released,limit";

    /** One sample; gomem's figures are -1 for the other allocators, limit -1 when there is none. */
    record Sample(long tMs, String phase, long live, long rss, long heapInuse, long heapIdle, long heapReleased, long limit) {
        String toLine() {
            return tMs + "," + phase + "," + live + "," + rss + "," + field(heapInuse) + "," + field(heapIdle) + ","
                    + field(heapReleased) + "," + field(limit);
        }

        static Sample parse(String line) {
            String[] f = line.split(",", -1);
            return new Sample(Long.parseLong(f[0]), f[1], Long.parseLong(f[2]), Long.parseLong(f[3]), number(f[4]),
                    number(f[5]), number(f[6]), number(f[7]));
        }

        private static String field(long v) {
            return v < 0 ? "" : Long.toString(v);
        }

        private static long number(String s) {
            return s.isEmpty() ? -1 : Long.parseLong(s);
        }
    }

    /** A phase and when it started. */
    record PhaseMark(String name, long startMs) {
    }

    /** The samples taken in {@code phase}; the last is the one at its end. */
    List<Sample> samplesOf(String phase) {
        return samples.stream().filter(s -> s.phase.equals(phase)).toList();
    }

    /** How long {@code phase} took, or -1 if it did not run. */
    long phaseMillis(String phase) {
        for (int i = 0; i < phases.size(); i++) {
            if (phases.get(i).name.equals(phase)) {
                return (i + 1 < phases.size() ? phases.get(i + 1).startMs : doneMs) - phases.get(i).startMs;
            }
        }
        return -1;
    }

    long peakRss() {
        return samples.stream().mapToLong(Sample::rss).max().orElse(0);
    }

    /** Collects a child's protocol lines into a run. */
    static final class Builder {
        private final String allocator;
        private long baseline;
        private final List<Sample> samples = new ArrayList<>();
        private final List<PhaseMark> phases = new ArrayList<>();
        private final List<String> notes = new ArrayList<>();
        private long releaseCallMicros = -1;
        private long doneMs = -1;

        Builder(String allocator) {
            this.allocator = allocator;
        }

        /** Takes one line; false if it is not part of the protocol. */
        boolean accept(String line) {
            int space = line.indexOf(' ');
            String rest = line.substring(space + 1);
            switch (space < 0 ? line : line.substring(0, space)) {
                case "baseline" -> baseline = Long.parseLong(rest);
                case "phase" -> {
                    String[] f = rest.split(" ");
                    phases.add(new PhaseMark(f[0], Long.parseLong(f[1])));
                }
                case "sample" -> samples.add(Sample.parse(rest));
                case "release-call" -> releaseCallMicros = Long.parseLong(rest);
                case "note" -> notes.add(rest);
                case "done" -> doneMs = Long.parseLong(rest);
                default -> {
                    return false;
                }
            }
            return true;
        }

        /** The latest sample, or null. */
        Sample last() {
            return samples.isEmpty() ? null : samples.getLast();
        }

        /** The run, or null if the child never finished its workload. */
        ChurnRun build() {
            return doneMs < 0 ? null : new ChurnRun(allocator, baseline, List.copyOf(samples), List.copyOf(phases),
                    releaseCallMicros, doneMs, List.copyOf(notes));
        }
    }

    /** Writes every run's samples to one CSV file ({@link #CSV_HEADER}). */
    static void writeCsv(List<ChurnRun> runs, Path file) throws IOException {
        try (Writer w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            w.write(CSV_HEADER + "\n");
            for (ChurnRun r : runs) {
                for (Sample s : r.samples) {
                    w.write(r.allocator + "," + s.toLine() + "\n");
                }
            }
        }
    }
}
