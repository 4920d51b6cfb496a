package io.gomem.cli;

import io.gomem.cli.GomemRecording.Snapshot;
import io.gomem.cli.GomemRecording.Tally;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code gomem stats}: what a JFR recording says about the gomem heaps of the application that
 * made it: each heap's last {@code io.gomem.MemStats} snapshot, and the totals of the other gomem
 * events (OS transitions per call, scavenges per kind, heap growth, span refills per object
 * size). Prints only what is in the recording, and says what is not. Exit 1 if the recording has
 * no gomem events, 2 if the file is missing or not a recording.
 */
@Command(name = "stats", mixinStandardHelpOptions = true,
        description = {"Prints the gomem figures of a JFR recording: each heap's last MemStats, and event totals.",
            "The last io.gomem.MemStats snapshot of each heap, and the totals of the other gomem events: OS transitions"
                    + " per call, scavenges per kind, heap growth, span refills per object size. Exit 1 if the recording"
                    + " has no gomem events, 2 if it is missing or not a recording."})
final class StatsCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(paramLabel = "RECORDING", description = "A JFR recording (.jfr).")
    Path recording;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        GomemRecording r;
        try (Progress progress = new Progress(err, "stats", Main.root(spec).stderrIsTerminal)) {
            r = GomemRecording.read(spec.commandLine(), recording, progress);
        }
        if (r.noGomemEvents() != null) {
            err.println("gomem stats: " + r.noGomemEvents());
            return 1;
        }
        out.printf(Locale.ROOT, "recording %s: %.1f s, %d events, %d of them gomem's%n", recording, r.length(), r.events, r.gomemEvents);
        if (r.heaps.isEmpty()) {
            out.println("\nno " + GomemRecording.MEM_STATS + " snapshot: the event is periodic (every second), so the recording"
                    + " is shorter than that or the event was disabled");
        }
        for (Map.Entry<Integer, List<Snapshot>> heap : r.heaps.entrySet()) {
            Snapshot last = heap.getValue().getLast();
            out.printf(Locale.ROOT, "%nheap %s: last %s snapshot at %.1f s (%d snapshots)%n", Integer.toHexString(heap.getKey()),
                    GomemRecording.MEM_STATS, r.seconds(last.at()), heap.getValue().size());
            for (Map.Entry<String, Long> f : last.fields().entrySet()) {
                boolean bytes = r.byteFields.contains(f.getKey());
                out.printf(Locale.ROOT, "  %-14s %14s%s%n", f.getKey(), bytes ? Units.bytes(f.getValue()) : f.getValue(),
                        bytes && f.getValue() >= 1024 ? "  (" + f.getValue() + " B)" : "");
            }
        }
        tallies(out, "OS transitions (" + GomemRecording.OS_TRANSITION + ") per call", "call", "bytes", r.transitionsByCall);
        tallies(out, "scavenges (" + GomemRecording.SCAVENGE + ") per kind", "kind", "released", r.scavengesByKind);
        out.println();
        out.println(r.heapGrowth.count == 0 ? "heap growth (" + GomemRecording.HEAP_GROW + "): none in the recording"
                : "heap growth (" + GomemRecording.HEAP_GROW + "): " + r.heapGrowth.count + " times, "
                + Units.bytes(r.heapGrowth.bytes) + " mapped");
        out.println();
        if (r.refillsByObjectSize.isEmpty()) {
            out.println("span refills (" + GomemRecording.SPAN_REFILL + "): none in the recording");
        } else {
            out.println("span refills (" + GomemRecording.SPAN_REFILL + ") per object size, the per-class figures the recording has:");
            out.printf(Locale.ROOT, "  %10s %10s%n", "size (B)", "refills");
            r.refillsByObjectSize.forEach((size, t) -> out.printf(Locale.ROOT, "  %10d %10d%n", size, t.count));
        }
        out.println();
        if (r.lastDump.isEmpty()) {
            out.println("per-class dump (" + GomemRecording.SIZE_CLASS + ", every 10 s): not in the recording (it was not"
                    + " enabled, or the recording is shorter than its period)");
        }
        r.lastDump.forEach((heap, rows) -> {
            out.println("per-class dump of heap " + heap + ", its last " + GomemRecording.SIZE_CLASS + " events"
                    + " (frees count once their spans are swept):");
            out.printf(Locale.ROOT, "  %-8s %8s %8s %12s %10s %12s %7s%n", "class", "size", "spans", "span bytes", "objects",
                    "bytes", "frag");
            for (GomemRecording.ClassRow c : rows) {
                double frag = c.spanBytes() == 0 ? 0 : 100.0 * (1 - (double) c.bytesInUse() / c.spanBytes());
                out.printf(Locale.ROOT, "  %-8s %8d %8d %12d %10d %12d %6.1f%%%n", c.sizeClass(), c.objectSize(), c.spans(),
                        c.spanBytes(), c.objects(), c.bytesInUse(), frag);
            }
        });
        out.flush();
        return 0;
    }

    private static void tallies(PrintWriter out, String title, String key, String bytesLabel, Map<String, Tally> tallies) {
        out.println();
        if (tallies.isEmpty()) {
            out.println(title + ": none in the recording");
            return;
        }
        out.println(title + ":");
        out.printf(Locale.ROOT, "  %-24s %10s %14s%n", key, "events", bytesLabel);
        tallies.forEach((k, t) -> out.printf(Locale.ROOT, "  %-24s %10d %14s%n", k, t.count, Units.bytes(t.bytes)));
    }
}
