package io.gomem.heap;

import org.junit.jupiter.api.Test;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.spi.ToolProvider;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Layers call only downward, checked on the compiled classes with the JDK's {@code jdeps}: every
 * class-level dependency between the heap's components goes from a higher layer to a lower one
 * (no cycle can pass this), the API package reaches the heap only through its entry point, and
 * the OS layer knows nothing above it.
 */
class LayersTest {
    /** The heap's components by layer, top first; a nested class counts as its outer class. */
    static final Map<String, Integer> RANK = Map.ofEntries(
            Map.entry("HeapSegments", 11), // the JDK 25 part's entry point: segments and arenas over Malloc
            Map.entry("Malloc", 10), Map.entry("HeldP", 10), // the entry points: the heap's, and a held P's
            Map.entry("HeapMXBeans", 9), Map.entry("UserArena", 9), // arenas: take chunks through a port HeapSegments passes
            Map.entry("Procs", 8),
            Map.entry("MCache", 7), Map.entry("MCacheOwnerPad", 7), Map.entry("MCacheOwner", 7),
            Map.entry("MCentral", 6),
            Map.entry("MHeap", 4),
            // What the heap is given or implements for those above it: a port, below the heap.
            Map.entry("SpanSource", 3), Map.entry("SpanTable", 3), Map.entry("Scavenger", 3),
            Map.entry("PageAlloc", 2), Map.entry("PallocBits", 2), Map.entry("PallocSum", 2), // one component: mpagealloc.go
            Map.entry("Metadata", 9), // measures every record: read by the entry point only
            Map.entry("MStats", 0), Map.entry("MSpan", 0), Map.entry("HeapEvents", 0), Map.entry("Background", 0),
            Map.entry("SizeClasses", -1), Map.entry("SpinLock", -1), Map.entry("Memclr", -1));
    /** Same-layer pairs that are one component split over classes. */
    static final java.util.Set<String> ONE_COMPONENT = java.util.Set.of("PageAlloc", "PallocBits", "PallocSum",
            "MCache", "MCacheOwnerPad", "MCacheOwner", "Malloc", "HeldP");

    record Dep(String from, String to) {
    }

    static List<Dep> dependencies() {
        Path classes = Path.of("target", "classes");
        Path bindings = Path.of("..", "bindings", "target", "classes");
        assertTrue(Files.isDirectory(classes), "compiled classes at " + classes.toAbsolutePath());
        ToolProvider jdeps = ToolProvider.findFirst("jdeps").orElseThrow();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int rc = jdeps.run(new PrintWriter(out), new PrintWriter(err), "--module-path", bindings.toString(),
                "-verbose:class", "-filter:none", classes.toString());
        assertEquals(0, rc, "jdeps failed: " + err);
        Pattern line = Pattern.compile("^\\s+(io\\.gomem[\\w.$]*)\\s+->\\s+(io\\.gomem[\\w.$]*)\\s");
        List<Dep> deps = new ArrayList<>();
        for (String l : out.toString().split("\n")) {
            Matcher m = line.matcher(l);
            if (m.find()) {
                String from = m.group(1).replaceAll("\\$.*", "");
                String to = m.group(2).replaceAll("\\$.*", "");
                if (!from.equals(to)) {
                    deps.add(new Dep(from, to));
                }
            }
        }
        assertTrue(deps.size() > 50, "jdeps found the dependencies: " + deps.size());
        return deps;
    }

    private static String simple(String cls) {
        return cls.substring(cls.lastIndexOf('.') + 1);
    }

    @Test
    void everyComponentCallsOnlyDownward() {
        TreeSet<String> upward = new TreeSet<>();
        for (Dep d : dependencies()) {
            if (!d.from().startsWith("io.gomem.heap.") || !d.to().startsWith("io.gomem.heap.")) {
                continue;
            }
            String a = simple(d.from());
            String b = simple(d.to());
            if (a.equals("package-info") || b.equals("package-info")) {
                continue;
            }
            Integer ra = RANK.get(a);
            Integer rb = RANK.get(b);
            assertTrue(ra != null && rb != null, "a heap class with no layer in this test: " + (ra == null ? a : b));
            boolean ok = ra > rb || (ONE_COMPONENT.contains(a) && ONE_COMPONENT.contains(b) && ra.equals(rb));
            if (!ok) {
                upward.add(a + " -> " + b);
            }
        }
        assertEquals(new TreeSet<>(), upward, "dependencies that do not go down a layer");
    }

    @Test
    void theApiReachesTheHeapOnlyThroughItsEntryPointAndTheOsLayerKnowsNothingAbove() {
        TreeSet<String> bad = new TreeSet<>();
        for (Dep d : dependencies()) {
            String from = d.from();
            String to = d.to();
            boolean apiToHeap = from.matches("io\\.gomem\\.[A-Z]\\w*") && to.startsWith("io.gomem.heap.")
                    && !to.equals("io.gomem.heap.Malloc") && !to.equals("io.gomem.heap.HeldP")
                    && !to.equals("io.gomem.heap.HeapSegments");
            boolean heapToApi = from.startsWith("io.gomem.heap.") && to.matches("io\\.gomem\\.[A-Z]\\w*")
                    && !(to.equals("io.gomem.GoHeap") || to.equals("io.gomem.RawHeap") || to.equals("io.gomem.GoHeapMXBean"));
            boolean osUp = from.startsWith("io.gomem.os.") && (to.startsWith("io.gomem.heap.")
                    || to.matches("io\\.gomem\\.[A-Z]\\w*") || to.startsWith("io.gomem.stats."));
            if (apiToHeap || heapToApi || osUp) {
                bad.add(from + " -> " + to);
            }
        }
        assertEquals(new TreeSet<>(), bad);
    }
}
