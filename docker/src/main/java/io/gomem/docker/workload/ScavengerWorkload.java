package io.gomem.docker.workload;

import io.gomem.GoHeap;
import io.gomem.docker.workload.Workload.Cgroup;
import io.gomem.stats.MemStats;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

import static io.gomem.docker.workload.Workload.KiB;
import static io.gomem.docker.workload.Workload.MiB;
import static io.gomem.docker.workload.Workload.mib;
import static io.gomem.docker.workload.Workload.say;

/**
 * Scenario "scavenger visible from outside": fills about {@code fill} bytes (default 200 MiB; half
 * in 1 MiB objects, half in small objects of 1 to 32 KiB), touching every page, prints
 * {@code workload: filled}, then frees everything, calls {@code releaseMemory()}, prints
 * {@code workload: released}, and exits. The container test reads the container's cgroup from
 * the host after each of those lines.
 *
 * <p>After each line the workload holds still so that the test can sample: until the file
 * {@code <sync>/go-release} (after "filled") or {@code <sync>/go-exit} (after "released")
 * appears, at most {@code wait} seconds (default 60); without {@code sync=DIR}, it just sleeps
 * {@code pause} seconds (default 3).
 *
 * <p>Arguments (optional): {@code fill=200m}, {@code sync=/tmp}, {@code wait=60}, {@code pause=3}.
 */
public final class ScavengerWorkload {
    public static void main(String[] args) {
        Workload w = new Workload("scavenger");
        w.run(() -> run(w, args));
    }

    private static void run(Workload w, String[] args) throws InterruptedException {
        long fill = 200 * MiB;
        Path sync = null;
        int waitSeconds = 60;
        int pauseSeconds = 3;
        for (String a : args) {
            String v = a.substring(a.indexOf('=') + 1);
            if (a.startsWith("fill=")) fill = Workload.bytes(v);
            else if (a.startsWith("sync=")) sync = Path.of(v);
            else if (a.startsWith("wait=")) waitSeconds = Integer.parseInt(v);
            else if (a.startsWith("pause=")) pauseSeconds = Integer.parseInt(v);
            else throw new IllegalArgumentException("unknown argument " + a);
        }
        say("cgroup " + Cgroup.version() + " limit " + Cgroup.limit() + "; before the heap: " + Cgroup.describe());
        long usageStart = Cgroup.usage();

        try (GoHeap heap = GoHeap.builder().build()) {
            SplittableRandom rnd = new SplittableRandom(42);
            long[] objs = new long[(int) (fill / KiB) + 16];
            int n = 0;
            long filled = 0;
            while (filled < fill / 2) {
                long p = heap.allocate(MiB);
                Workload.touch(p, MiB, (byte) n);
                objs[n++] = p;
                filled += MiB;
            }
            while (filled < fill) {
                long sz = KiB + rnd.nextLong(31 * KiB + 1);
                long p = heap.allocate(sz);
                Workload.touch(p, sz, (byte) n);
                objs[n++] = p;
                filled += sz;
            }
            MemStats full = heap.memStats().checkInvariants();
            long usageFilled = Cgroup.usage();
            say("filled " + filled + " B (" + mib(filled) + ") in " + n + " objects; osReady " + full.osReady() + " ("
                    + mib(full.osReady()) + "); inside: " + Cgroup.describe());
            w.check(full.osReady() >= filled, "osReady " + mib(full.osReady()) + " >= filled " + mib(filled));
            w.check(usageFilled - usageStart >= filled * 9 / 10, "the cgroup (seen inside) grew by "
                    + mib(usageFilled - usageStart) + " >= 90% of " + mib(filled));
            hold(sync, "go-release", waitSeconds, pauseSeconds);

            for (int i = 0; i < n; i++) {
                heap.free(objs[i]);
            }
            long released = heap.releaseMemory();
            MemStats after = heap.memStats().checkInvariants();
            heap.checkInvariants();
            long usageReleased = Cgroup.usage();
            say("released " + released + " B (" + mib(released) + ") by releaseMemory(); osReady " + after.osReady() + " ("
                    + mib(after.osReady()) + "), heapReleased " + mib(after.heapReleased()) + "; inside: " + Cgroup.describe());
            w.check(after.heapObjects() == 0, "no live object left");
            w.check(released >= filled * 9 / 10, "releaseMemory() returned " + mib(released) + " >= 90% of " + mib(filled));
            w.check(after.osReady() <= 4 * MiB, "osReady " + mib(after.osReady()) + " <= 4 MiB after releaseMemory()");
            w.check(usageFilled - usageReleased >= filled * 3 / 4, "the cgroup (seen inside) dropped by "
                    + mib(usageFilled - usageReleased) + " >= 75% of " + mib(filled));
            w.put("filled", filled);
            w.put("released", released);
            w.put("osReadyFilled", full.osReady());
            w.put("osReadyReleased", after.osReady());
            w.put("insideUsageFilled", usageFilled);
            w.put("insideUsageReleased", usageReleased);
            hold(sync, "go-exit", waitSeconds, pauseSeconds);
        }
    }

    /** Waits for sync/name (at most waitSeconds), or sleeps pauseSeconds without a sync directory. */
    private static void hold(Path sync, String name, int waitSeconds, int pauseSeconds) throws InterruptedException {
        if (sync == null) {
            Thread.sleep(pauseSeconds * 1000L);
            return;
        }
        Path f = sync.resolve(name);
        long deadline = System.nanoTime() + waitSeconds * 1_000_000_000L;
        while (!Files.exists(f)) {
            if (System.nanoTime() > deadline) {
                say("no " + f + " after " + waitSeconds + " s; going on");
                return;
            }
            Thread.sleep(20);
        }
    }
}
