package io.gomem.docker.workload;

import io.gomem.GoHeap;
import io.gomem.docker.workload.Workload.Cgroup;
import io.gomem.stats.MemStats;

import java.util.SplittableRandom;

import static io.gomem.docker.workload.Workload.MiB;
import static io.gomem.docker.workload.Workload.hex;
import static io.gomem.docker.workload.Workload.mib;
import static io.gomem.docker.workload.Workload.say;

/**
 * Scenario "container limit": a heap built with default settings inside a memory-limited
 * container takes its soft limit from the cgroup (gomem.memoryLimitPercent, 75%, of
 * memory.max / memory.limit_in_bytes), and a churn of four times the container's limit, with a
 * bounded live set, stays under it: the heap's Ready memory under the soft limit (+ 4 MiB), the
 * cgroup's usage under the container's limit.
 *
 * <p>The churn allocates objects of random sizes (log-uniform 16 B to 64 KiB, and 1 MiB one time
 * in 400), writes a tag byte into every 4 KiB page of each (so the memory is really used),
 * checks the tags when it frees, and keeps at most {@code live} bytes live, freeing random
 * objects as it goes. Every {@code sample} operations it reads memStats() (and checks its
 * invariants) and the cgroup's usage.
 *
 * <p>Arguments (all optional, {@code key=value}): {@code total} (default 4 × the cgroup limit,
 * or 1g without one), {@code live} (96m), {@code sample} (2000 operations), {@code seed}.
 */
public final class ContainerLimitWorkload {
    private static final long SLACK = 4 * MiB;

    public static void main(String[] args) {
        Workload w = new Workload("container-limit");
        w.run(() -> run(w, args));
    }

    private static void run(Workload w, String[] args) {
        long cgroupLimit = Cgroup.limit();
        long total = cgroupLimit > 0 ? 4 * cgroupLimit : 1L << 30;
        long liveCap = 96 * MiB;
        int sampleEvery = 2000;
        long seed = System.nanoTime();
        for (String a : args) {
            String v = a.substring(a.indexOf('=') + 1);
            if (a.startsWith("total=")) total = Workload.bytes(v);
            else if (a.startsWith("live=")) liveCap = Workload.bytes(v);
            else if (a.startsWith("sample=")) sampleEvery = Integer.parseInt(v);
            else if (a.startsWith("seed=")) seed = Long.parseLong(v);
            else throw new IllegalArgumentException("unknown argument " + a);
        }
        say("cgroup " + Cgroup.version() + " memory limit " + cgroupLimit);
        say("churn: total " + total + " B (" + mib(total) + "), live at most " + mib(liveCap) + ", sample every "
                + sampleEvery + " operations, seed " + seed);
        long usageBefore = Cgroup.usage();

        try (GoHeap heap = GoHeap.builder().build()) {
            long soft = heap.memStats().memoryLimit();
            say("soft memory limit " + soft + " (" + mib(soft) + ")");
            long exact = cgroupLimit * 75 / 100;
            w.check(cgroupLimit > 0, "the container has a cgroup memory limit (" + cgroupLimit + ")");
            w.check(soft == exact, "soft limit " + soft + " is 75% of the cgroup limit " + cgroupLimit + " (" + exact + ")");
            w.put("cgroupLimit", cgroupLimit);
            w.put("softLimit", soft);

            Churn c = new Churn(heap, w, new SplittableRandom(seed), liveCap, soft, cgroupLimit);
            long start = System.nanoTime();
            while (c.allocated < total) {
                c.step();
                if (c.ops % sampleEvery == 0) {
                    c.sample();
                }
            }
            c.sample();
            long millis = (System.nanoTime() - start) / 1_000_000;
            say("churned " + c.allocated + " B (" + mib(c.allocated) + ") in " + c.ops + " allocations and " + c.frees
                    + " frees in " + millis + " ms; " + c.samples + " samples; max live " + mib(c.maxLive));
            say("max osReady " + c.maxReady + " (" + mib(c.maxReady) + ") against soft limit " + soft + " + slack " + SLACK);
            say("max cgroup usage " + c.maxUsage + " (" + mib(c.maxUsage) + ") against limit " + cgroupLimit
                    + "; cgroup before the heap " + usageBefore + ", peak " + Cgroup.peak() + ", limit hits " + Cgroup.limitHits());

            w.check(c.allocated >= total, "allocated " + c.allocated + " B >= " + total + " B");
            w.check(c.readyViolations == 0, "osReady stayed <= soft limit + 4 MiB in every sample ("
                    + c.readyViolations + " of " + c.samples + " over)");
            w.check(c.usageViolations == 0, "cgroup usage stayed < the limit in every sample ("
                    + c.usageViolations + " of " + c.samples + " not)");
            w.check(c.tagErrors == 0, "every freed object still held its tag bytes (" + c.tagErrors + " did not)");
            w.check(c.invariantErrors == 0, "memStats invariants held in every sample (" + c.invariantErrors + " broke)");

            c.freeAll();
            long released = heap.releaseMemory();
            MemStats end = heap.memStats().checkInvariants();
            heap.checkInvariants();
            say("freed everything; releaseMemory " + released + " B; osReady " + end.osReady() + ", heapAlloc "
                    + end.heapAlloc() + ", objects " + end.heapObjects() + "; " + Cgroup.describe());
            w.check(end.heapObjects() == 0 && end.heapAlloc() == 0, "no live object left after freeing all");

            w.put("allocated", c.allocated);
            w.put("ops", c.ops);
            w.put("samples", c.samples);
            w.put("maxLive", c.maxLive);
            w.put("maxOsReady", c.maxReady);
            w.put("maxMappedReady", c.maxMappedReady);
            w.put("maxCgroupUsage", c.maxUsage);
            w.put("maxCgroupAnon", c.maxAnon);
            w.put("cgroupPeak", Cgroup.peak());
            w.put("cgroupLimitHits", Cgroup.limitHits());
            w.put("millis", millis);
        }
    }

    /** The churn's state: the live objects and the maxima seen. */
    private static final class Churn {
        private static final int MAX_OBJECTS = 1 << 17;
        private static final double LOG_MIN = Math.log(16);
        private static final double LOG_MAX = Math.log(64 * 1024);

        final GoHeap heap;
        final Workload w;
        final SplittableRandom rnd;
        final long liveCap;
        final long soft;
        final long cgroupLimit;
        final long[] addr = new long[MAX_OBJECTS];
        final long[] size = new long[MAX_OBJECTS];
        final byte[] tag = new byte[MAX_OBJECTS];
        int n;
        long live;
        long allocated;
        long ops;
        long frees;
        long samples;
        long maxLive;
        long maxReady;
        long maxMappedReady;
        long maxUsage;
        long maxAnon;
        int readyViolations;
        int usageViolations;
        int tagErrors;
        int invariantErrors;

        Churn(GoHeap heap, Workload w, SplittableRandom rnd, long liveCap, long soft, long cgroupLimit) {
            this.heap = heap;
            this.w = w;
            this.rnd = rnd;
            this.liveCap = liveCap;
            this.soft = soft;
            this.cgroupLimit = cgroupLimit;
        }

        void step() {
            long sz = rnd.nextInt(400) == 0 ? MiB : (long) Math.exp(LOG_MIN + rnd.nextDouble() * (LOG_MAX - LOG_MIN));
            while (n > 0 && (live + sz > liveCap || n == MAX_OBJECTS)) {
                freeAt(rnd.nextInt(n));
            }
            long p = heap.allocate(sz);
            byte t = (byte) (ops * 31 + 7);
            Workload.touch(p, sz, t);
            addr[n] = p;
            size[n] = sz;
            tag[n] = t;
            n++;
            live += sz;
            allocated += sz;
            ops++;
            maxLive = Math.max(maxLive, live);
            if (n > 0 && rnd.nextInt(100) < 45) {
                freeAt(rnd.nextInt(n));
            }
        }

        void freeAt(int i) {
            long p = addr[i];
            if (!Workload.tagged(p, size[i], tag[i]) && tagErrors++ < 5) {
                say("FAILED the " + size[i] + " B object at " + hex(p) + " lost its tag " + tag[i]);
            }
            heap.free(p);
            live -= size[i];
            frees++;
            n--;
            addr[i] = addr[n];
            size[i] = size[n];
            tag[i] = tag[n];
        }

        void freeAll() {
            while (n > 0) {
                freeAt(n - 1);
            }
        }

        void sample() {
            samples++;
            MemStats s = heap.memStats();
            try {
                s.checkInvariants();
            } catch (IllegalStateException e) {
                if (invariantErrors++ < 5) {
                    say("FAILED " + e.getMessage());
                }
            }
            long usage = Cgroup.usage();
            long anon = Cgroup.anon();
            maxReady = Math.max(maxReady, s.osReady());
            maxMappedReady = Math.max(maxMappedReady, s.mappedReady());
            maxUsage = Math.max(maxUsage, usage);
            maxAnon = Math.max(maxAnon, anon);
            if (s.osReady() > soft + SLACK && readyViolations++ < 5) {
                say("FAILED osReady " + s.osReady() + " > soft limit " + soft + " + " + SLACK + " after " + ops + " allocations");
            }
            if (cgroupLimit > 0 && usage >= cgroupLimit && usageViolations++ < 5) {
                say("FAILED cgroup usage " + usage + " >= limit " + cgroupLimit + " after " + ops + " allocations");
            }
            if (samples % 10 == 1) {
                say("sample " + samples + ": allocated " + mib(allocated) + ", live " + mib(live) + " in " + n
                        + " objects, osReady " + mib(s.osReady()) + ", osPrepared " + mib(s.osPrepared()) + ", heapInuse "
                        + mib(s.heapInuse()) + ", cgroup usage " + mib(usage) + ", anon " + mib(anon));
            }
        }
    }
}
