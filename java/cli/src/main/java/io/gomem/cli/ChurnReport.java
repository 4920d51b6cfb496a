package io.gomem.cli;

import io.gomem.cli.ChurnRun.Sample;
import org.knowm.xchart.XYChart;

import java.awt.Color;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.ToLongFunction;

/**
 * The churn's results for people: the figure (one RSS line per allocator, gomem's HeapInuse and
 * HeapReleased, the live bytes, the phases and the soft limit) and the one-screen text summary.
 */
final class ChurnReport {
    private ChurnReport() {
    }

    private static final List<String> PHASES = Arrays.stream(Workload.Phase.values()).map(Workload.Phase::toString).toList();

    /** The figure: x in seconds since the workload started, y in MiB. */
    static XYChart chart(List<ChurnRun> runs, WorkloadOptions o) {
        XYChart c = Charts.chart(String.format(Locale.ROOT, "Memory over time under the same churn: live %s, %s sizes,"
                + " free %.0f%%, %d thread(s), seed %d", Units.bytes(o.live), o.sizes, o.freeFraction * 100, o.threads, o.seed),
                "time since the workload started (s)", "MiB");
        double top = 0;
        for (ChurnRun r : runs) {
            top = Math.max(top, series(c, r, r.allocator() + " RSS", Sample::rss, Charts.colorOf(r.allocator()), false));
            if (r.samples().getFirst().heapInuse() >= 0) {
                top = Math.max(top, series(c, r, r.allocator() + " HeapInuse", Sample::heapInuse, Charts.GOMEM, true));
                top = Math.max(top, series(c, r, r.allocator() + " HeapReleased", Sample::heapReleased, Charts.GOMEM_LIGHT, true));
            }
        }
        ChurnRun first = runs.getFirst();
        top = Math.max(top, series(c, first, "live (workload)", Sample::live, Charts.LIVE, true));
        double seconds = first.doneMs() / 1000.0;
        if (o.softLimit > 0) {
            top = Math.max(top, Units.mib(o.softLimit));
            Charts.horizontal(c, Units.mib(o.softLimit), "gomem soft limit " + Units.bytes(o.softLimit) + " (on its heap, not RSS)",
                    seconds * 0.12, top * 0.03);
        }
        c.getStyler().setYAxisMax(top * 1.12);
        List<ChurnRun.PhaseMark> marks = first.phases();
        for (int i = 0; i < marks.size(); i++) {
            double end = i + 1 < marks.size() ? marks.get(i + 1).startMs() / 1000.0 : seconds;
            Charts.span(c, marks.get(i).startMs() / 1000.0, end, marks.get(i).name(), top * 1.06, i % 2 == 1, top * 1.12);
        }
        return c;
    }

    private static double series(XYChart c, ChurnRun r, String name, ToLongFunction<Sample> value, Color color, boolean dashed) {
        List<Sample> s = r.samples();
        double[] x = new double[s.size()];
        double[] y = new double[s.size()];
        double max = 0;
        for (int i = 0; i < s.size(); i++) {
            x[i] = s.get(i).tMs() / 1000.0;
            y[i] = Units.mib(value.applyAsLong(s.get(i)));
            max = Math.max(max, y[i]);
        }
        Charts.line(c, name, x, y, color, dashed);
        return max;
    }

    /**
     * The summary: per allocator the baseline and peak RSS, the RSS at the end of each phase with
     * its ratio to the live bytes (after taking off the baseline), and the time of each phase.
     */
    static String summary(List<ChurnRun> runs, WorkloadOptions o) {
        StringBuilder sb = new StringBuilder();
        sb.append("churn: ").append(o.describe()).append("\n\n");
        sb.append("RSS in MiB at the end of each phase; x = (RSS - baseline) / live bytes then; baseline = the child JVM before the workload\n");
        sb.append(String.format(Locale.ROOT, "%-9s %9s %9s", "allocator", "baseline", "peak"));
        for (String p : PHASES) {
            sb.append(String.format(Locale.ROOT, " %16s", p.equals("release") ? "after release" : p));
        }
        sb.append('\n');
        for (ChurnRun r : runs) {
            sb.append(String.format(Locale.ROOT, "%-9s %9.1f %9.1f", r.allocator(), Units.mib(r.baselineRss()), Units.mib(r.peakRss())));
            for (String p : PHASES) {
                List<Sample> s = r.samplesOf(p);
                if (s.isEmpty()) {
                    sb.append(String.format(Locale.ROOT, " %16s", "-"));
                    continue;
                }
                Sample end = s.getLast();
                String ratio = end.live() > 0
                        ? String.format(Locale.ROOT, "%.2fx", (end.rss() - r.baselineRss()) / (double) end.live()) : "";
                sb.append(String.format(Locale.ROOT, " %9.1f %6s", Units.mib(end.rss()), ratio));
            }
            sb.append('\n');
        }
        sb.append("\nTime per phase in ms (paced: a phase takes at least its share of --duration)\n");
        sb.append(String.format(Locale.ROOT, "%-9s", "allocator"));
        for (String p : PHASES) {
            sb.append(String.format(Locale.ROOT, " %8s", p));
        }
        sb.append(String.format(Locale.ROOT, " %14s%n", "release call"));
        for (ChurnRun r : runs) {
            sb.append(String.format(Locale.ROOT, "%-9s", r.allocator()));
            for (String p : PHASES) {
                sb.append(String.format(Locale.ROOT, " %8d", r.phaseMillis(p)));
            }
            sb.append(String.format(Locale.ROOT, " %11.1f ms%n", r.releaseCallMicros() / 1000.0));
        }
        for (ChurnRun r : runs) {
            for (String note : r.notes()) {
                sb.append("note: ").append(note).append('\n');
            }
        }
        return sb.toString();
    }
}
