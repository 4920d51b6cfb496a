package io.gomem.docker;

import static io.gomem.docker.GomemContainers.MiB;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.dockerjava.api.model.Ulimit;

import java.io.IOException;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.testcontainers.containers.GenericContainer;

/**
 * Scenario "mmap failure" ({@code io.gomem.docker.workload.MmapFailureWorkload}): under an
 * address-space limit (RLIMIT_AS, as a container ulimit) the heap's arena reservation fails with
 * OutOfNativeMemoryError (errno ENOMEM), and gomem stays usable for what fits, with no JVM crash.
 *
 * <p>The limit: 2 GiB. The small JVM ({@link GomemContainers#SMALL_JVM}) reserves about 1 GiB of
 * address space (its heap, class space, code cache, thread stacks and glibc's malloc arenas:
 * {@code MALLOC_ARENA_MAX=2} keeps those few), so three objects of 256 MiB fit and the fourth's
 * reservation fails. Docker's CLI refuses {@code --ulimit as=...}, but its API passes the rlimit
 * to the runtime.
 */
class MmapFailureIT {
    private static final long LIMIT = 256 * MiB;
    private static final long ADDRESS_SPACE = 2048 * MiB;

    @Test
    @Timeout(150)
    void arenaReservationFailsWithEnomemUnderAnAddressSpaceLimit() throws IOException {
        Map<String, String> report = run("step=256m").assertPassed("mmap-failure", LIMIT);
        assertEquals("ENOMEM", report.get("errno"));
        assertTrue(Integer.parseInt(report.get("objects")) >= 1, "no 256 MiB object fitted before the refusal");
    }

    /**
     * Objects of 200 MiB leave a reserved tail in each reservation; when the next reservation
     * fails, that tail has already been mapped and then allocations must still either fit or get
     * ENOMEM. (A regression test: {@code MHeap.grow} once kept pointing at the tail it had just
     * mapped when the reservation after it failed, and a later grow mapped it again.)
     */
    @Test
    @Timeout(150)
    void heapStaysUsableAfterAFailedReservationWithAMappedTail() throws IOException {
        Map<String, String> report = run("step=200m").assertPassed("mmap-failure", LIMIT);
        assertEquals("ENOMEM", report.get("errno"));
    }

    private static GomemContainers.Run run(String... args) throws IOException {
        try (GenericContainer<?> c = GomemContainers.container(LIMIT)) {
            c.withEnv("MALLOC_ARENA_MAX", "2")
                    .withCreateContainerCmdModifier(cmd -> cmd.getHostConfig()
                            .withMemory(LIMIT)
                            .withMemorySwap(LIMIT)
                            .withUlimits(List.of(new Ulimit("as", ADDRESS_SPACE, ADDRESS_SPACE))))
                    .withCommand(GomemContainers.workloadCommand(List.of(), "MmapFailureWorkload", args));
            GomemContainers.Run run = GomemContainers.runToCompletion(c, Duration.ofSeconds(120));
            assertTrue(Arrays.stream(run.info().getHostConfig().getUlimits())
                            .anyMatch(u -> "as".equals(u.getName()) && u.getHardLong() == ADDRESS_SPACE),
                    "the container has no address-space ulimit: " + Arrays.toString(run.info().getHostConfig().getUlimits()));
            run.line("^workload: address-space limit \\(RLIMIT_AS\\) " + ADDRESS_SPACE + " " + ADDRESS_SPACE + " bytes");
            run.line("^workload: got OutOfNativeMemoryError errno=ENOMEM .* outOfMemoryError=true");
            run.line("^workload: check ok: after close\\(\\), a new heap allocates");
            return run;
        }
    }
}
