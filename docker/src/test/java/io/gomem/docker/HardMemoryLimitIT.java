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
 * Scenario "hard limit" ({@code io.gomem.docker.workload.HardLimitWorkload}): in a container of
 * 256 MiB with {@code -Dgomem.hardMemoryLimit=64m}, 1 MiB objects (touched) are refused with
 * MemoryLimitExceededError at the hard limit, the message names it, and the heap stays
 * usable (free half, allocate as many again, invariants hold).
 */
class HardMemoryLimitIT {
    private static final long LIMIT = 256 * MiB;
    private static final long HARD = 64 * MiB;

    @Test
    @Timeout(150)
    void allocationsAreRefusedAtTheHardLimitAndTheHeapStaysUsable() throws IOException {
        try (GenericContainer<?> c = GomemContainers.container(LIMIT)) {
            c.withCommand(GomemContainers.workloadCommand(List.of("-Dgomem.hardMemoryLimit=64m"), "HardLimitWorkload"));
            GomemContainers.Run run = GomemContainers.runToCompletion(c, Duration.ofSeconds(120));
            Map<String, String> report = run.assertPassed("hard-limit", LIMIT);

            assertEquals(String.valueOf(HARD), report.get("hardLimit"), "hard limit seen by the workload" + run.logs());
            run.line("^workload: refused after \\d+ objects: hard memory limit: .* hard limit of " + HARD
                    + " B \\(gomem.hardMemoryLimit\\)");
            run.line("^workload: check ok: after freeing \\d+ objects, (\\d+) of \\1 allocations succeeded");
            run.line("^workload: check ok: memStats\\(\\)\\.checkInvariants\\(\\) and checkInvariants\\(\\) pass");
            int objects = Integer.parseInt(report.get("objects"));
            assertTrue(objects >= 60 && objects <= 64, objects + " objects of 1 MiB before the refusal" + run.logs());
            long ready = Long.parseLong(report.get("osReadyAtLimit"));
            assertTrue(ready <= HARD, "osReady " + ready + " at the refusal is over the hard limit" + run.logs());
            long usage = Long.parseLong(report.get("cgroupUsageAtLimit"));
            assertTrue(usage < LIMIT, "cgroup usage " + usage + " at the hard limit" + run.logs());
        }
    }
}
