package io.gomem.docker;

import static io.gomem.docker.GomemContainers.MiB;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.testcontainers.containers.GenericContainer;

/**
 * Scenario "container limit" ({@code io.gomem.docker.workload.ContainerLimitWorkload}): in a
 * container of 256 MiB (memory = memory+swap), a heap built with default settings takes its soft
 * limit from the cgroup (75% of 268435456), and a churn of 1 GiB (4 × the container's limit) in
 * random sizes with at most 96 MiB live, touching every page, keeps the heap's Ready memory under
 * the soft limit (+ 4 MiB) and the cgroup's usage under the container's limit in every sample. A
 * second run allows 160 MiB live, which takes the heap to its soft limit.
 */
class ContainerLimitIT {
    private static final long LIMIT = 256 * MiB;

    @Test
    @Timeout(150)
    void churnOfFourTimesTheLimitStaysInsideA256MiBContainer() throws IOException {
        churn("96m");
    }

    /**
     * The same churn with up to 160 MiB live: fragmentation takes the heap's Ready memory up to the
     * soft limit (192 MiB), where allocation has to return free pages synchronously to stay under it.
     */
    @Test
    @Timeout(150)
    void churnWithALiveSetNearTheSoftLimitKeepsReadyMemoryUnderIt() throws IOException {
        Map<String, String> report = churn("160m");
        long soft = Long.parseLong(report.get("softLimit"));
        long maxReady = Long.parseLong(report.get("maxOsReady"));
        assertTrue(maxReady >= soft / 10 * 9, "max osReady " + maxReady + " never came near the soft limit " + soft
                + ": the limit was not exercised");
    }

    private static Map<String, String> churn(String live) throws IOException {
        try (GenericContainer<?> c = GomemContainers.container(LIMIT)) {
            c.withCommand(GomemContainers.workloadCommand(List.of(), "ContainerLimitWorkload", "live=" + live));
            GomemContainers.Run run = GomemContainers.runToCompletion(c, Duration.ofSeconds(120));
            Map<String, String> report = run.assertPassed("container-limit", LIMIT);

            // The soft limit the heap derived from the cgroup: 75% of 256 MiB.
            run.line("^workload: cgroup v[12] memory limit 268435456$");
            assertEquals(String.valueOf(LIMIT), report.get("cgroupLimit"), "cgroup limit seen inside" + run.logs());
            long soft = Long.parseLong(report.get("softLimit"));
            assertEquals(LIMIT * 75 / 100, soft, "soft limit is 75% of the cgroup limit" + run.logs());
            run.line("^workload: soft memory limit " + soft + " ");

            long allocated = Long.parseLong(report.get("allocated"));
            assertTrue(allocated >= 4 * LIMIT, "churned " + allocated + " B, less than 4 × the limit" + run.logs());
            long liveCap = Long.parseLong(live.substring(0, live.length() - 1)) * MiB;
            assertTrue(Long.parseLong(report.get("maxLive")) <= liveCap, "live set over " + live + run.logs());
            long maxReady = Long.parseLong(report.get("maxOsReady"));
            assertTrue(maxReady <= soft + 4 * MiB, "max osReady " + maxReady + " > soft limit + 4 MiB" + run.logs());
            long maxUsage = Long.parseLong(report.get("maxCgroupUsage"));
            assertTrue(maxUsage > 0 && maxUsage < LIMIT, "max cgroup usage " + maxUsage + " not below " + LIMIT + run.logs());
            run.line("^workload: max cgroup usage " + maxUsage + " ");
            System.out.printf("container-limit (live <= %s): churned %d MiB, max osReady %.1f MiB (soft limit %.1f MiB),"
                            + " max cgroup usage %.1f MiB of %d MiB, cgroup peak %s, in %s ms%n",
                    live, allocated / MiB, maxReady / (double) MiB, soft / (double) MiB, maxUsage / (double) MiB,
                    LIMIT / MiB, report.get("cgroupPeak"), report.get("millis"));
            return report;
        }
    }
}
