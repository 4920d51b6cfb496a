package io.gomem.cli;

import io.gomem.GoHeap;
import jdk.jfr.Event;
import jdk.jfr.Name;
import jdk.jfr.Recording;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code gomem plot} and {@code gomem stats} end to end on recordings this test makes: one of a
 * GoHeap in use for over two seconds (so that the periodic 1 s MemStats event fires), one with
 * no gomem event, and a file that is not a recording.
 */
class JfrCommandsTest {
    @TempDir
    static Path dir;
    static Path gomem;
    static Path noGomem;
    static Path notJfr;

    @Name("test.NotGomem")
    static final class NotGomemEvent extends Event {
        int n;
    }

    @BeforeAll
    static void record() throws Exception {
        gomem = dir.resolve("gomem.jfr");
        try (Recording r = new Recording()) {
            for (String e : List.of("MemStats", "OsTransition", "Scavenge", "HeapGrow", "SpanRefill")) {
                r.enable("io.gomem." + e);
            }
            r.enable("io.gomem.SizeClass").withPeriod(java.time.Duration.ofMillis(500));
            r.start();
            try (GoHeap heap = GoHeap.builder().build()) {
                for (int i = 0; i < 200; i++) {
                    heap.allocate(64); // live through the recording: the per-class dump shows them
                }
                SplittableRandom rng = new SplittableRandom(7);
                long[] blocks = new long[4096];
                long end = System.nanoTime() + 2_300_000_000L;
                while (System.nanoTime() < end) {
                    for (int i = 0; i < blocks.length; i++) {
                        blocks[i] = heap.allocate(16 + rng.nextInt(64 << 10));
                    }
                    Thread.sleep(50);
                    for (long b : blocks) {
                        heap.free(b);
                    }
                    heap.releaseMemory();
                }
            }
            r.stop();
            r.dump(gomem);
        }
        noGomem = dir.resolve("none.jfr");
        try (Recording r = new Recording()) {
            r.enable(NotGomemEvent.class);
            r.start();
            for (int i = 0; i < 10; i++) {
                NotGomemEvent e = new NotGomemEvent();
                e.n = i;
                e.commit();
            }
            r.stop();
            r.dump(noGomem);
        }
        notJfr = dir.resolve("text.jfr");
        Files.writeString(notJfr, "not a flight recording\n".repeat(100));
    }

    @Test
    void plotDrawsMemStatsAndTransitions() throws Exception {
        Path out = dir.resolve("plots");
        Cli.Result r = Cli.run("plot", gomem.toString(), "--out", out.toString());
        assertEquals(0, r.code(), r::toString);
        for (String chart : List.of("memstats", "os-transitions")) {
            Document svg = Cli.svg(out.resolve(chart + ".svg"));
            Cli.assertPng(out.resolve(chart + ".png"));
            assertTrue(r.out().contains("wrote " + out.resolve(chart + ".svg")), r::toString);
            String desc = Cli.svgDesc(svg);
            if (chart.equals("memstats")) {
                for (String s : List.of("HeapInuse", "HeapIdle", "HeapReleased", "HeapSys", "HeapAlloc")) {
                    assertTrue(desc.contains(s), s + " missing from " + desc);
                }
            } else {
                assertTrue(desc.contains("sysUsed") && desc.contains("sysUnused"), desc);
            }
        }
    }

    @Test
    void statsPrintsTheLastSnapshotAndTheTotals() {
        Cli.Result r = Cli.run("stats", gomem.toString());
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("last io.gomem.MemStats snapshot"), r::toString);
        for (String field : List.of("heapAlloc", "heapSys", "heapIdle", "heapInuse", "heapReleased", "heapObjects", "mallocs", "frees")) {
            assertTrue(r.out().contains("  " + field + " "), field + " missing:\n" + r.out());
        }
        assertTrue(r.out().contains("sysUsed"), r::toString);
        assertTrue(r.out().contains("span refills (io.gomem.SpanRefill) per object size"), r::toString);
        assertTrue(r.out().contains("per-class dump of heap "), r::toString);
        assertTrue(r.out().lines().anyMatch(l -> l.matches("\\s+\\d+\\s+64\\s+\\d+\\s+\\d+\\s+(2\\d\\d|[3-9]\\d\\d|\\d{4,})\\s+.*")),
                "a row of the 64 B class with the 200 live objects:\n" + r.out());
    }

    @Test
    void noGomemEventsIsOneLineAndExit1() {
        for (Cli.Result r : List.of(Cli.run("plot", noGomem.toString(), "--out", dir.resolve("none").toString()),
                Cli.run("stats", noGomem.toString()))) {
            assertEquals(1, r.code(), r::toString);
            assertEquals(1, r.errLines().length, r::toString);
            assertTrue(r.errLines()[0].contains("has no gomem events"), r::toString);
        }
    }

    @Test
    void aFileThatIsNotARecordingIsBadUsage() {
        for (String command : List.of("plot", "stats")) {
            Cli.Result r = Cli.run(command, notJfr.toString());
            assertEquals(2, r.code(), r::toString);
            assertEquals(1, r.errLines().length, r::toString);
            assertTrue(r.errLines()[0].contains("'RECORDING'") && r.errLines()[0].contains("not a readable JFR recording"),
                    r::toString);
        }
    }
}
