package io.gomem.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code gomem churn}: the figure of memory over time of several allocators under one seeded
 * workload (after Zavrtanik and Mihelič 2017). Runs the workload once per allocator, each in a
 * child JVM of its own ({@code gomem churn-child}) so that the kernel's RSS of that process is
 * the allocator's, merges their samples into churn.csv, draws churn.svg and churn.png, and prints
 * a summary. Exit 1 if an allocator's run failed.
 */
@Command(name = "churn", mixinStandardHelpOptions = true,
        description = {"Memory over time of gomem, glibc malloc and jemalloc under one seeded workload (the figure).",
            "Phases: grow to the live size, free a random fraction, grow back (regrow), free everything (drain),"
                    + " release (ask the allocator to return its memory) and idle. Each allocator runs in a JVM of its own"
                    + " that samples the kernel's RSS of its process (VmRSS) and, for gomem, HeapInuse, HeapIdle,"
                    + " HeapReleased and the soft limit. Writes DIR/churn.csv, DIR/churn.svg and DIR/churn.png and prints"
                    + " a summary. Exit 1 if an allocator's run failed."})
final class ChurnCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    WorkloadOptions options;

    @Option(names = "--allocators", split = ",", paramLabel = "NAME",
            description = "Allocators to run, in order (default: gomem,malloc,jemalloc; jemalloc only if libjemalloc2 is"
                    + " installed, or its libjemalloc.so.2 named by -Dgomem.cli.jemalloc=PATH, e.g. in JAVA_TOOL_OPTIONS).")
    List<String> allocators;

    @Option(names = "--out", paramLabel = "DIR", defaultValue = "churn-out",
            description = "Directory for churn.csv, churn.svg and churn.png (default: ${DEFAULT-VALUE}).")
    Path out;

    @Override
    public Integer call() throws IOException, InterruptedException {
        String invalid = options.invalid();
        if (invalid != null) {
            throw new ParameterException(spec.commandLine(), invalid);
        }
        List<String> names = new ArrayList<>(new LinkedHashSet<>(allocators == null ? Allocator.NAMES : allocators));
        for (String name : names) {
            if (!Allocator.NAMES.contains(name)) {
                throw new ParameterException(spec.commandLine(), "Invalid value for option '--allocators': '" + name
                        + "' is not one of " + String.join(", ", Allocator.NAMES));
            }
        }
        PrintWriter err = spec.commandLine().getErr();
        if (names.contains("jemalloc") && Allocator.jemallocLibrary().isEmpty()) {
            err.println("jemalloc: " + System.getProperty(Allocator.JEMALLOC_PROPERTY, "libjemalloc.so.2")
                    + " not found (apt-get install libjemalloc2): skipped");
            names.remove("jemalloc");
        }
        if (names.isEmpty()) {
            err.println("churn: no allocator to run");
            return 1;
        }
        Files.createDirectories(out);
        List<ChurnRun> runs = new ArrayList<>();
        int failed = 0;
        try (Progress progress = new Progress(err, "churn", Main.root(spec).stderrIsTerminal)) {
            for (int i = 0; i < names.size(); i++) {
                ChurnRun run = runChild(names.get(i), i, names.size(), progress);
                if (run == null) {
                    failed++;
                } else {
                    runs.add(run);
                }
            }
        }
        if (runs.isEmpty()) {
            err.println("churn: no allocator's run finished");
            return 1;
        }
        ChurnRun.writeCsv(runs, out.resolve("churn.csv"));
        List<Path> files = Charts.save(ChurnReport.chart(runs, options), out, "churn");
        PrintWriter stdout = spec.commandLine().getOut();
        stdout.print(ChurnReport.summary(runs, options));
        stdout.println("\nwrote " + out.resolve("churn.csv") + ", " + files.get(0) + ", " + files.get(1));
        stdout.flush();
        return failed == 0 ? 0 : 1;
    }

    /** Runs the workload on one allocator in a child JVM; its run, or null (said on stderr) if it failed. */
    private ChurnRun runChild(String name, int index, int count, Progress progress) throws InterruptedException {
        Map<String, String> env = Map.of();
        if (name.equals("jemalloc")) {
            String tunables = System.getenv("GLIBC_TUNABLES");
            env = Map.of("GLIBC_TUNABLES", (tunables == null || tunables.isEmpty() ? "" : tunables + ":") + Allocator.JEMALLOC_TUNABLE);
        }
        List<String> args = new ArrayList<>(List.of("churn-child", "--allocator", name));
        args.addAll(options.toArgs());
        Process p = ChildJvm.start(childJvmFlags(), Main.class.getName(), args, env);
        Thread errors = ChildJvm.pump(p.getErrorStream(), line -> progress.println(name + ": " + line));
        ChurnRun.Builder run = new ChurnRun.Builder(name);
        double millis = options.duration.toMillis();
        progress.update((double) index / count, name + ": starting");
        ChildJvm.lines(p.getInputStream(), line -> {
            if (!run.accept(line)) {
                progress.println(name + ": " + line);
            }
            ChurnRun.Sample last = run.last();
            if (last != null) {
                progress.update((index + Math.min(1, last.tMs() / millis)) / count, name + ": " + last.phase());
            }
        });
        int rc = p.waitFor();
        errors.join();
        ChurnRun result = run.build();
        if (rc != 0 || result == null) {
            progress.println("churn: " + name + " failed (exit " + rc + ")");
            return null;
        }
        return result;
    }

    /**
     * The child's JVM: a fixed, pre-touched Java heap (Serial GC) big enough for the workload's
     * block table, so that the Java heap does not grow under the allocator's RSS, and C1 only, so
     * that the JIT's own memory stays small and steady.
     */
    private List<String> childJvmFlags() {
        long blocks = (long) (options.live / options.sizes.mean() * 1.2) + 1024;
        long heapMib = 32 + blocks * 40 / Units.MIB; // 12 bytes a block, in arrays that double
        List<String> flags = new ArrayList<>(List.of("-XX:+UseSerialGC", "-Xms" + heapMib + "m", "-Xmx" + heapMib + "m",
                "-XX:+AlwaysPreTouch", "-XX:TieredStopAtLevel=1"));
        String jemalloc = System.getProperty(Allocator.JEMALLOC_PROPERTY);
        if (jemalloc != null) {
            flags.add("-D" + Allocator.JEMALLOC_PROPERTY + "=" + jemalloc);
        }
        return flags;
    }
}
