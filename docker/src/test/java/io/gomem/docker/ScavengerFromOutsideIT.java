package io.gomem.docker;

import static io.gomem.docker.GomemContainers.MiB;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.async.ResultCallback;
import com.github.dockerjava.api.command.InspectContainerResponse;
import com.github.dockerjava.api.model.Statistics;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.output.OutputFrame;
import org.testcontainers.containers.output.WaitingConsumer;
import org.testcontainers.images.builder.Transferable;

/**
 * Scenario "scavenger visible from outside" ({@code io.gomem.docker.workload.ScavengerWorkload}):
 * in a container of 512 MiB the workload fills about 200 MiB (every page touched), frees it all and
 * calls {@code releaseMemory()}. This test reads the container's memory usage from outside the
 * container, from the host's cgroup files, after {@code workload: filled} and after
 * {@code workload: released}, and checks it dropped by at least 150 MiB: the pages really went back
 * to the kernel.
 *
 * <p>Synchronisation: the workload holds still after each of those lines until this test drops a
 * file into the container ({@code /tmp/go-release}, {@code /tmp/go-exit}; through the engine's
 * archive API, so the image needs no shell). The container's cgroup directory on the host is found
 * from its init process: {@code /proc/<pid>/cgroup} names it (v1: the {@code memory} controller's
 * path under {@code /sys/fs/cgroup/memory}, file {@code memory.usage_in_bytes}; v2: the unified path
 * under {@code /sys/fs/cgroup}, file {@code memory.current}). When that is not readable (an engine
 * on another machine), the engine's stats API ({@code docker stats --no-stream}) is used instead.
 */
class ScavengerFromOutsideIT {
    private static final long LIMIT = 512 * MiB;
    private static final long MIN_DROP = 150 * MiB;
    private static final long FILL = 200 * MiB;

    @Test
    @Timeout(150)
    void usageSeenFromTheHostDropsAfterReleaseMemory() throws IOException, TimeoutException, InterruptedException {
        WaitingConsumer waiting = new WaitingConsumer();
        try (GenericContainer<?> c = GomemContainers.container(LIMIT)) {
            c.withCommand(GomemContainers.workloadCommand(List.of(), "ScavengerWorkload", "sync=/tmp", "wait=60"))
                    .withLogConsumer(waiting)
                    .waitingFor(new GomemContainers.NoWait());
            long start = System.nanoTime();
            c.start();
            String id = c.getContainerId();
            DockerClient client = DockerClientFactory.instance().client();
            InspectContainerResponse info = client.inspectContainerCmd(id).exec();
            UsageSource source = UsageSource.find(client, info);
            System.out.println("scavenger: reading the container's memory usage from " + source);

            boolean filledSeen = awaitLine(waiting, "workload: filled", 90);
            long usageFilled = source.read();
            long statsFilled = UsageSource.stats(client, id);
            c.copyFileToContainer(Transferable.of("go"), "/tmp/go-release");

            boolean releasedSeen = filledSeen && awaitLine(waiting, "workload: released", 60);
            long usageReleased = source.read();
            long statsReleased = UsageSource.stats(client, id);
            c.copyFileToContainer(Transferable.of("go"), "/tmp/go-exit");

            awaitExit(client, id, 60);
            GomemContainers.Run run = GomemContainers.collect(c, (System.nanoTime() - start) / 1_000_000);
            run.print();
            System.out.printf("scavenger: host-side usage after filled %.1f MiB, after released %.1f MiB, drop %.1f MiB"
                            + " (%s); engine stats API: %.1f -> %.1f MiB%n",
                    usageFilled / (double) MiB, usageReleased / (double) MiB, (usageFilled - usageReleased) / (double) MiB,
                    source, statsFilled / (double) MiB, statsReleased / (double) MiB);

            assertTrue(filledSeen, "no 'workload: filled' line" + run.logs());
            assertTrue(releasedSeen, "no 'workload: released' line" + run.logs());
            Map<String, String> report = run.assertPassed("scavenger", LIMIT);
            long filled = Long.parseLong(report.get("filled"));
            assertTrue(filled >= FILL, "filled only " + filled + " B" + run.logs());
            assertTrue(usageFilled >= FILL, "usage seen from outside after 'filled' is " + usageFilled
                    + " B, less than the " + FILL + " B filled (" + source + ")" + run.logs());
            assertTrue(usageFilled - usageReleased >= MIN_DROP, "usage seen from outside dropped by only "
                    + (usageFilled - usageReleased) + " B (" + usageFilled + " -> " + usageReleased + ", " + source
                    + "), expected at least " + MIN_DROP + run.logs());
        }
    }

    /** Waits for a stdout line starting with {@code prefix}; false if the container's output ended first. */
    private static boolean awaitLine(WaitingConsumer waiting, String prefix, int seconds) throws TimeoutException {
        boolean[] seen = new boolean[1];
        Predicate<OutputFrame> p = f -> {
            if (f.getType() == OutputFrame.OutputType.END) {
                return true;
            }
            if (f.getUtf8String().lines().anyMatch(l -> l.startsWith(prefix))) {
                seen[0] = true;
                return true;
            }
            return false;
        };
        waiting.waitUntil(p, seconds, TimeUnit.SECONDS);
        return seen[0];
    }

    private static void awaitExit(DockerClient client, String id, int seconds) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (Boolean.TRUE.equals(client.inspectContainerCmd(id).exec().getState().getRunning())) {
            if (System.nanoTime() > deadline) {
                fail("the workload did not exit within " + seconds + " s of /tmp/go-exit");
            }
            Thread.sleep(50);
        }
    }

    /** Where the container's current memory usage is read, from outside the container. */
    private record UsageSource(Path file, DockerClient client, String id) {
        static UsageSource find(DockerClient client, InspectContainerResponse info) {
            Long pid = info.getState().getPidLong();
            if (pid != null && pid > 0) {
                try {
                    for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/cgroup"))) {
                        // v1: "9:memory:/docker/<id>"; v2: "0::/system.slice/docker-<id>.scope"
                        String[] f = line.split(":", 3);
                        if (f.length < 3) {
                            continue;
                        }
                        Path p = null;
                        if (List.of(f[1].split(",")).contains("memory")) {
                            p = Path.of("/sys/fs/cgroup/" + f[1] + f[2], "memory.usage_in_bytes");
                        } else if (f[0].equals("0") && f[1].isEmpty()) {
                            p = Path.of("/sys/fs/cgroup" + f[2], "memory.current");
                        }
                        if (p != null && Files.isReadable(p)) {
                            return new UsageSource(p, client, info.getId());
                        }
                    }
                } catch (IOException e) {
                    // the engine's processes are not visible here: use the stats API
                }
            }
            for (Path p : List.of(Path.of("/sys/fs/cgroup/memory/docker", info.getId(), "memory.usage_in_bytes"),
                    Path.of("/sys/fs/cgroup/system.slice", "docker-" + info.getId() + ".scope", "memory.current"))) {
                if (Files.isReadable(p)) {
                    return new UsageSource(p, client, info.getId());
                }
            }
            return new UsageSource(null, client, info.getId());
        }

        long read() {
            if (file == null) {
                return stats(client, id);
            }
            try {
                return Long.parseLong(Files.readString(file).trim());
            } catch (IOException | NumberFormatException e) {
                throw new AssertionError("cannot read " + file, e);
            }
        }

        /** Memory usage from the engine's stats API (what {@code docker stats --no-stream} shows before its cache adjustment). */
        static long stats(DockerClient client, String id) {
            AtomicLong usage = new AtomicLong(-1);
            try (ResultCallback.Adapter<Statistics> cb = new ResultCallback.Adapter<>() {
                @Override
                public void onNext(Statistics s) {
                    if (s.getMemoryStats() != null && s.getMemoryStats().getUsage() != null) {
                        usage.set(s.getMemoryStats().getUsage());
                    }
                }
            }) {
                client.statsCmd(id).withNoStream(true).exec(cb).awaitCompletion(30, TimeUnit.SECONDS);
            } catch (IOException | InterruptedException | RuntimeException e) {
                System.out.println("scavenger: stats API failed: " + e);
            }
            return usage.get();
        }

        @Override
        public String toString() {
            return file != null ? "host file " + file : "the engine's stats API";
        }
    }
}
