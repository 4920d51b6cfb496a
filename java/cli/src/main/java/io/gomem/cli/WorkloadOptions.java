package io.gomem.cli;

import picocli.CommandLine.Option;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * The churn workload's settings, a picocli mixin shared by {@code gomem churn} and its hidden
 * child command (the parent hands them on with {@link #toArgs()}), and the block-size
 * distributions.
 */
final class WorkloadOptions {
    /** Block sizes, log-uniform between two bounds. */
    enum Sizes {
        SMALL(16, 1024), MIXED(16, 64 << 10), LARGE(64 << 10, 1 << 20);

        final long min;
        final long max;

        Sizes(long min, long max) {
            this.min = min;
            this.max = max;
        }

        long sample(SplittableRandom rng) {
            return Math.min(max, (long) Math.exp(Math.log(min) + rng.nextDouble() * (Math.log(max) - Math.log(min))));
        }

        /** The mean of the log-uniform distribution: (max - min) / ln(max / min). */
        double mean() {
            return (max - min) / Math.log((double) max / min);
        }

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    @Option(names = "--live", paramLabel = "SIZE", converter = Units.ByteSize.class, defaultValue = "256m",
            description = "Live size the grow phases reach: 256m, 1g, 4096, ... (default: ${DEFAULT-VALUE}).")
    long live;

    @Option(names = "--sizes", paramLabel = "DIST", defaultValue = "mixed",
            description = "Block sizes, log-uniform: small (16 B-1 KiB), mixed (16 B-64 KiB), large (64 KiB-1 MiB)."
                    + " Default: ${DEFAULT-VALUE}.")
    Sizes sizes;

    @Option(names = "--free-fraction", paramLabel = "F", converter = Units.Fraction.class, defaultValue = "0.5",
            description = "Fraction of the blocks the free phase frees, at random (default: ${DEFAULT-VALUE}).")
    double freeFraction;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "1",
            description = "Worker threads, each with its share of the live size (1-64; default: ${DEFAULT-VALUE}).")
    int threads;

    @Option(names = "--duration", paramLabel = "TIME", converter = Units.Time.class, defaultValue = "8s",
            description = "Paced time of the five phases, per allocator (default: ${DEFAULT-VALUE}): grow 30%%, free 15%%,"
                    + " regrow 25%%, drain 10%%, release 20%%. A phase whose work takes longer runs longer.")
    Duration duration;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "42", description = "Random seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--interval", paramLabel = "MS", defaultValue = "20",
            description = "Sampling period in milliseconds (1-10000; default: ${DEFAULT-VALUE}).")
    int intervalMs;

    @Option(names = "--soft-limit", paramLabel = "SIZE", converter = Units.ByteSize.class,
            description = "gomem's soft memory limit (GoHeap.Builder.memoryLimit); drawn on the chart.")
    long softLimit;

    @Option(names = "--hard-limit", paramLabel = "SIZE", converter = Units.ByteSize.class,
            description = "gomem's hard memory limit (GoHeap.Builder.hardMemoryLimit): allocations past it are refused.")
    long hardLimit;

    /** The range checks that picocli's converters cannot make: a message naming the option, or null. */
    String invalid() {
        if (threads < 1 || threads > 64) {
            return "Invalid value for option '--threads': " + threads + " is not between 1 and 64";
        }
        if (intervalMs < 1 || intervalMs > 10_000) {
            return "Invalid value for option '--interval': " + intervalMs + " is not between 1 and 10000";
        }
        return null;
    }

    /** These settings as command-line arguments, for the child JVM. */
    List<String> toArgs() {
        List<String> args = new ArrayList<>(List.of("--live", Long.toString(live), "--sizes", sizes.toString(),
                "--free-fraction", Double.toString(freeFraction), "--threads", Integer.toString(threads),
                "--duration", duration.toMillis() + "ms", "--seed", Long.toString(seed),
                "--interval", Integer.toString(intervalMs)));
        if (softLimit > 0) {
            args.addAll(List.of("--soft-limit", Long.toString(softLimit)));
        }
        if (hardLimit > 0) {
            args.addAll(List.of("--hard-limit", Long.toString(hardLimit)));
        }
        return args;
    }

    /** One line saying what the workload is. */
    String describe() {
        return String.format(Locale.ROOT, "live %s of %s blocks (%s-%s, log-uniform), free %.0f%%, %d thread%s, seed %d,"
                        + " %.1f s per allocator", Units.bytes(live), sizes, Units.bytes(sizes.min), Units.bytes(sizes.max),
                freeFraction * 100, threads, threads == 1 ? "" : "s", seed, duration.toMillis() / 1000.0);
    }
}
