package io.gomem.cli;

import io.gomem.cli.GomemRecording.Snapshot;
import io.gomem.cli.GomemRecording.Transition;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.style.lines.SeriesLines;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.awt.BasicStroke;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

/**
 * {@code gomem plot}: charts a JFR recording of any application that used gomem. memstats.svg/png:
 * each heap's HeapInuse, HeapIdle, HeapReleased, HeapSys and HeapAlloc over time, from the
 * periodic {@code io.gomem.MemStats} event; os-transitions.svg/png: {@code io.gomem.OsTransition}
 * events per second over time, one line per call. Exit 1 if the recording has no gomem events,
 * 2 if the file is missing or not a recording.
 */
@Command(name = "plot", mixinStandardHelpOptions = true,
        description = {"Charts the gomem events of a JFR recording as SVG and PNG.",
            "DIR/memstats.svg and .png: each heap's HeapInuse, HeapIdle, HeapReleased, HeapSys and HeapAlloc over time"
                    + " (io.gomem.MemStats, every second); DIR/os-transitions.svg and .png: io.gomem.OsTransition events"
                    + " per second, per call. Record an application with e.g."
                    + " java -XX:StartFlightRecording:filename=app.jfr ... Exit 1 if the recording has no gomem events,"
                    + " 2 if it is missing or not a recording."})
final class PlotCommand implements Callable<Integer> {
    /** MemStats fields drawn (the event's names; Go's are the same, capitalised). */
    private static final List<String> FIELDS = List.of("heapInuse", "heapIdle", "heapReleased", "heapSys", "heapAlloc");

    @Spec
    CommandSpec spec;

    @Parameters(paramLabel = "RECORDING", description = "A JFR recording (.jfr).")
    Path recording;

    @Option(names = "--out", paramLabel = "DIR", defaultValue = "plot-out",
            description = "Directory for the charts (default: ${DEFAULT-VALUE}).")
    Path out;

    @Override
    public Integer call() throws IOException {
        PrintWriter stdout = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        GomemRecording r;
        try (Progress progress = new Progress(err, "plot", Main.root(spec).stderrIsTerminal)) {
            r = GomemRecording.read(spec.commandLine(), recording, progress);
        }
        if (r.noGomemEvents() != null) {
            err.println("gomem plot: " + r.noGomemEvents());
            return 1;
        }
        Files.createDirectories(out);
        List<Path> written = new ArrayList<>();
        if (r.heaps.isEmpty()) {
            err.println("gomem plot: no " + GomemRecording.MEM_STATS + " events (periodic, every second): memstats chart not drawn");
        } else {
            written.addAll(Charts.save(memStatsChart(r), out, "memstats"));
        }
        if (r.transitions.isEmpty()) {
            err.println("gomem plot: no " + GomemRecording.OS_TRANSITION + " events: os-transitions chart not drawn");
        } else {
            written.addAll(Charts.save(transitionsChart(r), out, "os-transitions"));
        }
        if (written.isEmpty()) {
            err.println("gomem plot: nothing to plot in " + recording + " (" + r.gomemEvents + " other gomem events)");
            return 1;
        }
        for (Path p : written) {
            stdout.println("wrote " + p);
        }
        stdout.flush();
        return 0;
    }

    private static XYChart memStatsChart(GomemRecording r) {
        XYChart c = Charts.chart("gomem MemStats of " + r.file.getFileName(), "time since the recording started (s)", "MiB");
        c.getStyler().setXAxisMin(0.0);
        boolean several = r.heaps.size() > 1;
        boolean firstHeap = true;
        for (Map.Entry<Integer, List<Snapshot>> heap : r.heaps.entrySet()) {
            List<Snapshot> s = heap.getValue();
            for (int f = 0; f < FIELDS.size(); f++) {
                String field = FIELDS.get(f);
                if (!s.getFirst().fields().containsKey(field)) {
                    continue;
                }
                double[] x = new double[s.size()];
                double[] y = new double[s.size()];
                for (int i = 0; i < s.size(); i++) {
                    x[i] = r.seconds(s.get(i).at());
                    y[i] = Units.mib(s.get(i).fields().get(field));
                }
                String name = (several ? "heap " + Integer.toHexString(heap.getKey()) + " " : "")
                        + Character.toUpperCase(field.charAt(0)) + field.substring(1);
                // One colour per field, later heaps dashed; HeapIdle wide, so that it shows round HeapReleased
                // when every idle byte is released and the two lines coincide.
                BasicStroke stroke = !firstHeap ? SeriesLines.DASH_DASH : new BasicStroke(field.equals("heapIdle") ? 5f : 2f);
                Charts.line(c, name, x, y, Charts.PALETTE.get(f), stroke);
            }
            firstHeap = false;
        }
        return c;
    }

    /** Bin widths for the event rate, in seconds: the narrowest that gives at most 600 bins. */
    private static final double[] BINS = {0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};

    /** Events per second of each call, counted in bins (0.1 s for short recordings, wider for long ones), at the bins' centres. */
    private static XYChart transitionsChart(GomemRecording r) {
        double seconds = r.length();
        double bin = Arrays.stream(BINS).filter(b -> seconds / b <= 600).findFirst().orElse(BINS[BINS.length - 1]);
        int bins = (int) (seconds / bin) + 1;
        Map<String, double[]> perCall = new TreeMap<>();
        for (Transition t : r.transitions) {
            perCall.computeIfAbsent(t.call(), k -> new double[bins])[Math.min(bins - 1, (int) (r.seconds(t.at()) / bin))] += 1 / bin;
        }
        double[] x = new double[bins];
        for (int i = 0; i < bins; i++) {
            x[i] = (i + 0.5) * bin;
        }
        XYChart c = Charts.chart(String.format(Locale.ROOT, "gomem OS transitions per second in %s (counted in %s s bins)",
                r.file.getFileName(), bin), "time since the recording started (s)", "events per second");
        int color = 0;
        for (Map.Entry<String, double[]> e : perCall.entrySet()) {
            Charts.line(c, e.getKey(), x, e.getValue(), Charts.PALETTE.get(color++ % Charts.PALETTE.size()), false);
        }
        return c;
    }
}
