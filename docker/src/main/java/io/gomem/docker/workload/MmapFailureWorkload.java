package io.gomem.docker.workload;

import io.gomem.GoHeap;
import io.gomem.docker.workload.Workload.Cgroup;
import io.gomem.os.OutOfNativeMemoryError;
import io.gomem.stats.MemStats;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static io.gomem.docker.workload.Workload.MiB;
import static io.gomem.docker.workload.Workload.hex;
import static io.gomem.docker.workload.Workload.mib;
import static io.gomem.docker.workload.Workload.say;

/**
 * Scenario "mmap failure": run under an address-space limit (RLIMIT_AS, {@code ulimit -v}).
 * Allocates large objects ({@code step}, default 256 MiB, touched once per MiB) until the kernel
 * refuses the heap address space: an {@link OutOfNativeMemoryError} (an OutOfMemoryError) with
 * errno ENOMEM. Then checks the heap is still usable for what fits: 1 MiB objects either fit or
 * fail with ENOMEM again (nothing else); after one large object is freed they fit in its pages;
 * small objects too; invariants hold. Finally close() must give the address space back: a new
 * heap gets a large object again.
 *
 * <p>Arguments (optional): {@code step=256m}, {@code max=64} (largest number of objects tried).
 */
public final class MmapFailureWorkload {
    public static void main(String[] args) {
        Workload w = new Workload("mmap-failure");
        w.run(() -> run(w, args));
    }

    private static void run(Workload w, String[] args) throws Exception {
        long step = 256 * MiB;
        int max = 64;
        for (String a : args) {
            String v = a.substring(a.indexOf('=') + 1);
            if (a.startsWith("step=")) step = Workload.bytes(v);
            else if (a.startsWith("max=")) max = Integer.parseInt(v);
            else throw new IllegalArgumentException("unknown argument " + a);
        }
        say("address-space limit (RLIMIT_AS) " + limitLine() + "; cgroup limit " + Cgroup.limit());
        say("process address space before the heap: " + vm("VmSize") + " (peak " + vm("VmPeak") + ")");

        List<Long> big = new ArrayList<>();
        OutOfNativeMemoryError enomem = null;
        try (GoHeap heap = GoHeap.builder().build()) {
            while (big.size() < max) {
                try {
                    long p = heap.allocate(step);
                    Workload.touch(p, step, (byte) big.size(), MiB);
                    big.add(p);
                    say("allocated object " + big.size() + " of " + mib(step) + " at " + hex(p) + "; address space " + vm("VmSize"));
                } catch (OutOfNativeMemoryError e) {
                    enomem = e;
                    say("allocation " + (big.size() + 1) + " of " + mib(step) + " failed: " + e);
                    say("got OutOfNativeMemoryError errno=" + enomem.errnoName() + " call=" + enomem.call() + " syscall="
                            + enomem.syscall() + " outOfMemoryError=" + (e instanceof OutOfMemoryError));
                    break;
                }
            }
            if (!w.check(enomem != null, "the kernel refused address space within " + max + " objects of " + mib(step))) {
                return;
            }
            w.check("ENOMEM".equals(enomem.errnoName()), "errno is ENOMEM (" + enomem.errnoName() + ")");
            int fittedBefore = big.size();
            w.check(big.size() >= 1, big.size() + " objects of " + mib(step) + " fitted before the refusal");
            w.check(enomem.getMessage().contains("ENOMEM"), "the message names ENOMEM: " + enomem.getMessage());
            MemStats s = heap.memStats().checkInvariants();
            heap.checkInvariants();
            say("after the refusal: osReserved " + mib(s.osReserved()) + ", osPrepared " + mib(s.osPrepared()) + ", osReady "
                    + mib(s.osReady()) + ", heapInuse " + mib(s.heapInuse()) + "; address space " + vm("VmSize"));
            w.check(s.heapInuse() >= big.size() * step, "heapInuse " + s.heapInuse() + " covers the " + big.size() + " objects");

            // Whatever still fits: 1 MiB objects either fit (address space left) or fail with ENOMEM, nothing else.
            List<Long> smallish = new ArrayList<>();
            int fitted = 0;
            int refused = 0;
            int tries = (int) (step / MiB) + 64; // enough to use up any mapped tail and make the heap grow again
            for (int i = 0; i < tries && refused < 8; i++) {
                try {
                    long p = heap.allocate(MiB);
                    // First and last byte only: this test is about address space, and touching
                    // every page of a few hundred MiB would pass the container's memory limit.
                    Workload.touch(p, MiB, (byte) i, MiB);
                    smallish.add(p);
                    fitted++;
                } catch (OutOfNativeMemoryError e) {
                    if (!"ENOMEM".equals(e.errnoName())) {
                        w.fail("a 1 MiB allocation after the refusal failed with errno " + e.errnoName() + ": " + e);
                        break;
                    }
                    refused++;
                } catch (RuntimeException e) {
                    w.fail("a 1 MiB allocation after the refusal failed with something other than ENOMEM: " + e);
                    e.printStackTrace(System.out);
                    break;
                }
            }
            say("without freeing: " + fitted + " objects of 1 MiB fitted, then " + refused + " refused with ENOMEM");
            w.check(refused == 8 || fitted == tries, "1 MiB allocations after the refusal either fit or get ENOMEM (" + fitted
                    + " fitted, " + refused + " refused)");
            for (long p : smallish) {
                heap.free(p);
            }
            smallish.clear();

            // Free one large object: its pages serve new objects without new address space.
            heap.free(big.remove(big.size() - 1));
            int reused = 0;
            try {
                for (int i = 0; i < 16; i++) {
                    long p = heap.allocate(MiB);
                    // First and last byte only: this test is about address space, and touching
                    // every page of a few hundred MiB would pass the container's memory limit.
                    Workload.touch(p, MiB, (byte) i, MiB);
                    smallish.add(p);
                    reused++;
                }
                for (int i = 0; i < 1000; i++) {
                    long p = heap.allocate(64 + i % 500);
                    Workload.touch(p, 64 + i % 500, (byte) i);
                    smallish.add(p);
                }
            } catch (RuntimeException | OutOfNativeMemoryError e) {
                say("FAILED allocation into the freed object's pages: " + e);
                e.printStackTrace(System.out);
            }
            w.check(reused == 16 && smallish.size() == 1016, "after freeing one large object, 16 objects of 1 MiB and 1000 small"
                    + " ones fit in its pages (" + smallish.size() + " of 1016)");
            for (long p : smallish) {
                heap.free(p);
            }
            for (long p : big) {
                heap.free(p);
            }
            long released = heap.releaseMemory();
            MemStats end = heap.memStats().checkInvariants();
            heap.checkInvariants();
            w.check(end.heapObjects() == 0, "no live object left after freeing all (" + end.heapObjects() + ")");
            say("freed all; released " + mib(released) + "; invariants pass; address space " + vm("VmSize"));
            w.put("objects", fittedBefore);
            w.put("step", step);
            w.put("errno", enomem.errnoName());
            w.put("call", enomem.call());
        }
        say("heap closed; address space " + vm("VmSize"));
        // close() unmapped everything: a new heap gets address space again.
        try (GoHeap again = GoHeap.builder().build()) {
            long p = again.allocate(step);
            Workload.touch(p, step, (byte) 1, MiB);
            again.free(p);
            w.check(true, "after close(), a new heap allocates " + mib(step) + " again");
        } catch (RuntimeException | OutOfNativeMemoryError e) {
            w.fail("after close(), a new heap could not allocate " + mib(step) + ": " + e);
        }
        w.check(Cgroup.usage() < Cgroup.limit() || Cgroup.limit() < 0, "cgroup usage below the container limit");
    }

    private static String limitLine() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/limits"))) {
                if (line.startsWith("Max address space")) {
                    return line.substring("Max address space".length()).trim().replaceAll("\\s+", " ");
                }
            }
        } catch (java.io.IOException e) {
            // unknown
        }
        return "unknown";
    }

    /** A line of /proc/self/status such as VmSize, in MiB. */
    private static String vm(String key) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(key + ":")) {
                    long kb = Long.parseLong(line.substring(key.length() + 1).trim().split("\\s+")[0]);
                    return mib(kb * 1024);
                }
            }
        } catch (java.io.IOException | NumberFormatException e) {
            // unknown
        }
        return "?";
    }
}
