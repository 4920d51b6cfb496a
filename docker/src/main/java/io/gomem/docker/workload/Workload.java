package io.gomem.docker.workload;

import io.gomem.internal.RawMemory;
import io.gomem.os.KernelView;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * What every container workload shares: {@code workload: ...} output lines, checks that are
 * counted and reported, the final report line, the exit code, touching memory through raw
 * addresses, and the cgroup's own view of the container's memory.
 *
 * <p>Protocol with the container tests (which read the container's output): every line starts
 * with {@code workload: }; a failed check prints {@code workload: FAILED <what>}; the last line
 * is {@code workload: report scenario=<name> result=<pass|FAIL> checks=<n> failed=<n> key=value...};
 * the exit code is 0 only if no check failed and nothing unexpected was thrown.
 */
final class Workload {
    static final long KiB = 1L << 10;
    static final long MiB = 1L << 20;
    /** The touch stride: one write per 4 KiB page makes every page of a range resident. */
    static final long TOUCH_STRIDE = 4 * KiB;

    private final String scenario;
    private final Map<String, Object> report = new LinkedHashMap<>();
    private int checks;
    private int failed;

    Workload(String scenario) {
        this.scenario = scenario;
    }

    /** Runs the body; prints the report and exits 0 if every check held, 1 otherwise. */
    void run(Body body) {
        int code;
        try {
            body.run();
            code = failed == 0 ? 0 : 1;
        } catch (Throwable t) {
            say("FAILED unexpected " + t);
            t.printStackTrace(System.out);
            failed++;
            code = 2;
        }
        StringBuilder line = new StringBuilder("report scenario=").append(scenario)
                .append(" result=").append(failed == 0 ? "pass" : "FAIL")
                .append(" checks=").append(checks).append(" failed=").append(failed);
        report.forEach((k, v) -> line.append(' ').append(k).append('=').append(v));
        say(line.toString());
        System.out.flush();
        System.exit(code);
    }

    interface Body {
        void run() throws Exception;
    }

    static void say(String line) {
        System.out.println("workload: " + line);
        System.out.flush();
    }

    /** Counts a check; prints {@code workload: check ok: what} or {@code workload: FAILED what}. */
    boolean check(boolean ok, String what) {
        checks++;
        if (ok) {
            say("check ok: " + what);
        } else {
            failed++;
            say("FAILED " + what);
        }
        return ok;
    }

    /** Counts a failure without printing a check line for every success (for checks run in loops). */
    void fail(String what) {
        checks++;
        failed++;
        say("FAILED " + what);
    }

    /** Adds {@code key=value} to the report line. */
    void put(String key, Object value) {
        report.put(key, value);
    }

    // ───────────────────────────── memory ─────────────────────────────

    /** Writes {@code tag} at every {@link #TOUCH_STRIDE} of [addr, addr+size) and at its last byte. */
    static void touch(long addr, long size, byte tag) {
        touch(addr, size, tag, TOUCH_STRIDE);
    }

    /** Writes {@code tag} every {@code stride} bytes of [addr, addr+size) and at its last byte. */
    static void touch(long addr, long size, byte tag, long stride) {
        if (size <= 0) {
            return;
        }
        for (long off = 0; off < size; off += stride) {
            RawMemory.putByte(addr + off, tag);
        }
        RawMemory.putByte(addr + size - 1, tag);
    }

    /** True if the first and last bytes of [addr, addr+size) still hold {@code tag}. */
    static boolean tagged(long addr, long size, byte tag) {
        return size <= 0 || (RawMemory.getByte(addr) == tag
                && RawMemory.getByte(addr + size - 1) == tag);
    }

    static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1f MiB", bytes / (double) MiB);
    }

    static String hex(long addr) {
        return "0x" + Long.toHexString(addr);
    }

    /** A byte count: a number with an optional k, m or g suffix (binary). */
    static long bytes(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        int shift = switch (t.charAt(t.length() - 1)) {
            case 'k' -> 10;
            case 'm' -> 20;
            case 'g' -> 30;
            default -> 0;
        };
        return Long.parseLong(shift == 0 ? t : t.substring(0, t.length() - 1)) << shift;
    }

    // ───────────────────────────── the cgroup ─────────────────────────────

    /** The container's cgroup as the process sees it: v2 at /sys/fs/cgroup, v1 under /sys/fs/cgroup/memory. */
    static final class Cgroup {
        private static final Path V2 = Path.of("/sys/fs/cgroup/memory.current");
        private static final boolean IS_V2 = Files.isReadable(V2);
        private static final Path V1 = Path.of("/sys/fs/cgroup/memory");

        private Cgroup() {
        }

        static String version() {
            return IS_V2 ? "v2" : Files.isReadable(V1.resolve("memory.usage_in_bytes")) ? "v1" : "none";
        }

        /** The memory limit (v2 memory.max, v1 memory.limit_in_bytes), -1 if none. */
        static long limit() {
            return KernelView.cgroupMemoryLimit();
        }

        /** Memory charged to the cgroup now (v2 memory.current, v1 memory.usage_in_bytes; with page cache), -1 if unknown. */
        static long usage() {
            return IS_V2 ? read(V2) : read(V1.resolve("memory.usage_in_bytes"));
        }

        /** The cgroup's high-water mark (v2 memory.peak, v1 memory.max_usage_in_bytes), -1 if unknown. */
        static long peak() {
            return IS_V2 ? read(Path.of("/sys/fs/cgroup/memory.peak")) : read(V1.resolve("memory.max_usage_in_bytes"));
        }

        /** Anonymous memory of the cgroup (v2 memory.stat anon, v1 memory.stat total_rss), -1 if unknown. */
        static long anon() {
            return IS_V2 ? stat(Path.of("/sys/fs/cgroup/memory.stat"), "anon")
                    : stat(V1.resolve("memory.stat"), "total_rss");
        }

        /** Times the cgroup hit its limit (v2 memory.events max, v1 memory.failcnt), -1 if unknown. */
        static long limitHits() {
            return IS_V2 ? stat(Path.of("/sys/fs/cgroup/memory.events"), "max") : read(V1.resolve("memory.failcnt"));
        }

        private static long read(Path p) {
            try {
                return Long.parseLong(Files.readString(p).trim());
            } catch (IOException | NumberFormatException e) {
                return -1;
            }
        }

        private static long stat(Path p, String key) {
            try {
                for (String line : Files.readAllLines(p)) {
                    if (line.startsWith(key + " ")) {
                        return Long.parseLong(line.substring(key.length() + 1).trim());
                    }
                }
            } catch (IOException | NumberFormatException e) {
                // unknown
            }
            return -1;
        }

        /** One line: usage, peak, anon, limit hits. */
        static String describe() {
            return "cgroup " + version() + " usage " + usage() + " (" + mib(usage()) + "), peak " + peak()
                    + ", anon " + anon() + " (" + mib(anon()) + "), limit hits " + limitHits();
        }
    }
}
