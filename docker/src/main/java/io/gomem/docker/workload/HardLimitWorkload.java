package io.gomem.docker.workload;

import io.gomem.GoHeap;
import io.gomem.docker.workload.Workload.Cgroup;
import io.gomem.os.MemoryLimitExceededError;
import io.gomem.stats.MemStats;

import java.util.ArrayList;
import java.util.List;

import static io.gomem.docker.workload.Workload.MiB;
import static io.gomem.docker.workload.Workload.mib;
import static io.gomem.docker.workload.Workload.say;

/**
 * Scenario "hard limit": run with {@code -Dgomem.hardMemoryLimit=64m} (or another value). Allocates
 * 1 MiB objects, touching every page, until the heap refuses with MemoryLimitExceededError;
 * checks that the refusal names the limit and happened near it, that the heap stays usable (free
 * half, allocate as many again, then the limit refuses again), that its invariants hold and that
 * the cgroup saw about that much memory and no more.
 */
public final class HardLimitWorkload {
    private static final long OBJECT = MiB;

    public static void main(String[] args) {
        Workload w = new Workload("hard-limit");
        w.run(() -> run(w));
    }

    private static void run(Workload w) {
        String prop = System.getProperty("gomem.hardMemoryLimit", "");
        w.check(!prop.isBlank(), "-Dgomem.hardMemoryLimit is set ('" + prop + "')");
        long hard = Workload.bytes(prop);
        say("hard memory limit " + hard + " (" + mib(hard) + "), cgroup limit " + Cgroup.limit());
        long usageBefore = Cgroup.usage();

        try (GoHeap heap = GoHeap.builder().build()) {
            List<Long> objs = new ArrayList<>();
            MemoryLimitExceededError refused = null;
            int max = (int) (hard / OBJECT) * 2 + 16;
            while (objs.size() < max) {
                try {
                    long p = heap.allocate(OBJECT);
                    Workload.touch(p, OBJECT, (byte) objs.size());
                    objs.add(p);
                } catch (MemoryLimitExceededError e) {
                    refused = e;
                    break;
                }
            }
            int count = objs.size();
            MemStats atLimit = heap.memStats().checkInvariants();
            long usageAtLimit = Cgroup.usage();
            if (!w.check(refused != null, "allocation refused with MemoryLimitExceededError after " + count + " objects of 1 MiB")) {
                return;
            }
            say("refused after " + count + " objects: " + refused.getMessage());
            say("at the limit: osReady " + atLimit.osReady() + " (" + mib(atLimit.osReady()) + "), heapInuse "
                    + atLimit.heapInuse() + ", mappedReady " + atLimit.mappedReady() + "; " + Cgroup.describe());
            w.check(refused.limit() == hard, "the exception's limit() " + refused.limit() + " is the hard limit " + hard);
            w.check(refused.getMessage().contains(Long.toString(hard)) && refused.getMessage().contains("gomem.hardMemoryLimit"),
                    "the message names the limit (" + hard + " B, gomem.hardMemoryLimit)");
            w.check(refused.ready() + refused.requested() > hard, "ready " + refused.ready() + " + requested "
                    + refused.requested() + " would pass the limit");
            long lowest = hard / OBJECT - 4; // a few MiB may go to span and chunk rounding
            w.check(count >= lowest && count <= hard / OBJECT, "refused near the limit: " + count + " objects of 1 MiB, expected "
                    + lowest + " to " + hard / OBJECT);
            w.check(atLimit.osReady() <= hard, "osReady " + atLimit.osReady() + " <= hard limit " + hard);
            long grew = usageAtLimit - usageBefore;
            say("cgroup usage grew by " + grew + " B (" + mib(grew) + ") from " + mib(usageBefore) + " to " + mib(usageAtLimit));
            w.check(grew >= count * OBJECT / 2, "the cgroup saw the memory used: grew " + mib(grew) + " >= half of " + count + " MiB");
            w.check(Cgroup.limit() < 0 || usageAtLimit < Cgroup.limit(), "cgroup usage " + usageAtLimit + " < container limit " + Cgroup.limit());

            // Still usable: free half, allocate as many again, then the limit refuses once more.
            int half = count / 2;
            for (int i = 0; i < half; i++) {
                heap.free(objs.remove(objs.size() - 1));
            }
            int again = 0;
            try {
                for (int i = 0; i < half; i++) {
                    long p = heap.allocate(OBJECT);
                    Workload.touch(p, OBJECT, (byte) i);
                    objs.add(p);
                    again++;
                }
            } catch (MemoryLimitExceededError e) {
                say("FAILED refused again after only " + again + " of " + half + ": " + e.getMessage());
            }
            w.check(again == half, "after freeing " + half + " objects, " + again + " of " + half + " allocations succeeded");
            boolean refusedAgain = false;
            try {
                for (int i = 0; i < 8; i++) {
                    objs.add(heap.allocate(OBJECT));
                }
            } catch (MemoryLimitExceededError e) {
                refusedAgain = true;
            }
            w.check(refusedAgain, "back at the limit, the heap refuses again");
            // At the limit, even a small object needing a new span is refused; one free makes room.
            heap.free(objs.remove(objs.size() - 1));
            long small = heap.allocate(64);
            Workload.touch(small, 64, (byte) 1);
            heap.free(small);
            MemStats s = heap.memStats().checkInvariants();
            heap.checkInvariants();
            w.check(s.osReady() <= hard, "osReady " + s.osReady() + " <= hard limit " + hard + " after the refill");
            w.check(true, "memStats().checkInvariants() and checkInvariants() pass");

            for (long p : objs) {
                heap.free(p);
            }
            long released = heap.releaseMemory();
            MemStats end = heap.memStats().checkInvariants();
            say("freed all; released " + released + " B; osReady " + end.osReady() + "; " + Cgroup.describe());
            w.check(end.heapObjects() == 0, "no live object left");
            w.put("hardLimit", hard);
            w.put("objects", count);
            w.put("osReadyAtLimit", atLimit.osReady());
            w.put("cgroupUsageAtLimit", usageAtLimit);
            w.put("cgroupPeak", Cgroup.peak());
        }
    }
}
