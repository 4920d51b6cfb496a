package io.gomem.cli;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code gomem churn} end to end on a small workload (32 MiB live, 2 s per allocator), with each
 * allocator in a real child JVM: the exit code, the CSV's columns and series against the kernel's
 * RSS, the SVG and PNG, the summary.
 */
class ChurnCommandTest {
    private static final long LIVE = 32L << 20;
    private static final long SOFT_LIMIT = 96L << 20;

    @TempDir
    static Path dir;
    static Cli.Result result;
    static List<String> allocators;
    /** The CSV's rows per allocator, each row a map from column to value. */
    static final Map<String, List<Map<String, String>>> rows = new LinkedHashMap<>();

    @BeforeAll
    static void runChurn() throws Exception {
        result = Cli.run("churn", "--live", "32m", "--duration", "2s", "--interval", "20", "--soft-limit", "96m",
                "--out", dir.toString());
        allocators = Allocator.jemallocLibrary().isPresent() ? List.of("gomem", "malloc", "jemalloc") : List.of("gomem", "malloc");
        List<String> lines = Files.readAllLines(dir.resolve("churn.csv"));
        String[] header = lines.getFirst().split(",", -1);
        for (String line : lines.subList(1, lines.size())) {
            String[] f = line.split(",", -1);
            assertEquals(header.length, f.length, line);
            Map<String, String> row = new LinkedHashMap<>();
            for (int i = 0; i < f.length; i++) {
                row.put(header[i], f[i]);
            }
            rows.computeIfAbsent(f[0], a -> new ArrayList<>()).add(row);
        }
    }

    private static long number(Map<String, String> row, String column) {
        return Long.parseLong(row.get(column));
    }

    @Test
    void exitsZeroAndWritesTheThreeFiles() {
        assertEquals(0, result.code(), result::toString);
        for (String f : List.of("churn.csv", "churn.svg", "churn.png")) {
            assertTrue(Files.isRegularFile(dir.resolve(f)), f);
        }
        if (allocators.size() == 2) {
            assertTrue(result.err().contains("jemalloc: libjemalloc.so.2 not found (apt-get install libjemalloc2): skipped"),
                    result::toString);
        }
    }

    @Test
    void csvHasTheColumnsAndOneSeriesPerAllocator() throws Exception {
        assertEquals("allocator,t_ms,phase,live_bytes,rss_bytes,heap_inuse,heap_idle,heap_released,limit",
                Files.readAllLines(dir.resolve("churn.csv")).getFirst());
        assertEquals(allocators, List.copyOf(rows.keySet()));
        for (String a : allocators) {
            List<Map<String, String>> r = rows.get(a);
            assertTrue(r.size() > 50, a + ": only " + r.size() + " samples in 2 s at 20 ms");
            List<String> phases = r.stream().map(m -> m.get("phase")).distinct().toList();
            assertEquals(List.of("grow", "free", "regrow", "drain", "release"), phases, a);
            boolean gomem = a.equals("gomem");
            for (Map<String, String> row : r) {
                assertEquals(gomem, !row.get("heap_inuse").isEmpty(), a + ": " + row);
                assertEquals(gomem ? Long.toString(SOFT_LIMIT) : "", row.get("limit"), a + ": " + row);
            }
            Map<String, String> endOfGrow = r.stream().filter(m -> m.get("phase").equals("grow")).toList().getLast();
            assertTrue(number(endOfGrow, "live_bytes") >= LIVE, a + " did not reach the live size: " + endOfGrow);
        }
    }

    @Test
    void gomemValuesAgreeWithTheKernelsRss() {
        List<Map<String, String>> r = rows.get("gomem");
        long baseline = number(r.getFirst(), "rss_bytes");
        long peak = 0;
        for (Map<String, String> row : r) {
            long rss = number(row, "rss_bytes");
            long live = number(row, "live_bytes");
            peak = Math.max(peak, rss);
            if (row.get("phase").equals("grow") || row.get("phase").equals("regrow")) {
                assertTrue(rss >= live, "RSS below the live bytes: " + row);
                assertTrue(rss - baseline >= live - (4L << 20), "RSS grew less than the live bytes: " + row);
            }
            assertTrue(number(row, "heap_released") <= number(row, "heap_idle"), row::toString);
        }
        assertTrue(peak - baseline >= LIVE, "peak RSS " + peak + " is not a live size above the first sample " + baseline);
        long end = number(r.getLast(), "rss_bytes");
        assertTrue(end - baseline < (peak - baseline) / 4, "RSS after release " + end + " is not well below the peak " + peak
                + " (first sample " + baseline + ")");
        assertEquals(0, number(r.getLast(), "live_bytes"));
    }

    @Test
    void svgParsesAndHoldsOneSeriesPerAllocator() throws Exception {
        Document svg = Cli.svg(dir.resolve("churn.svg"));
        String desc = Cli.svgDesc(svg);
        String text = Files.readString(dir.resolve("churn.svg"));
        for (String a : allocators) {
            assertTrue(desc.contains(a + " RSS"), a + " missing from the series: " + desc);
            java.awt.Color c = Charts.colorOf(a);
            assertTrue(text.contains("stroke:rgb(" + c.getRed() + "," + c.getGreen() + "," + c.getBlue() + ")"),
                    a + "'s line is not drawn");
        }
        assertTrue(desc.contains("gomem HeapInuse") && desc.contains("gomem HeapReleased"), desc);
    }

    @Test
    void missingJemallocIsSaidAndSkipped() throws Exception {
        Path out = dir.resolve("no-jemalloc");
        System.setProperty(Allocator.JEMALLOC_PROPERTY, "/nonexistent/libjemalloc.so.2");
        Cli.Result r;
        try {
            r = Cli.run("churn", "--allocators", "malloc,jemalloc", "--live", "4m", "--duration", "500ms", "--out", out.toString());
        } finally {
            System.clearProperty(Allocator.JEMALLOC_PROPERTY);
        }
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.err().contains("jemalloc: /nonexistent/libjemalloc.so.2 not found (apt-get install libjemalloc2): skipped"),
                r::toString);
        assertTrue(Files.readAllLines(out.resolve("churn.csv")).stream().skip(1).allMatch(l -> l.startsWith("malloc,")));
    }

    @Test
    void pngIsAPng() throws Exception {
        Cli.assertPng(dir.resolve("churn.png"));
    }

    @Test
    void summaryHasEveryAllocatorAndPhase() {
        for (String a : allocators) {
            assertTrue(result.out().lines().anyMatch(l -> l.startsWith(a + " ")), a + " missing from\n" + result.out());
        }
        for (String p : List.of("grow", "free", "regrow", "drain", "after release", "release call", "peak", "baseline")) {
            assertTrue(result.out().contains(p), p + " missing from\n" + result.out());
        }
        assertFalse(result.out().contains("NaN"), result.out());
        assertTrue(result.err().contains("churn: malloc: "), "no progress line on stderr:\n" + result.err());
    }
}
