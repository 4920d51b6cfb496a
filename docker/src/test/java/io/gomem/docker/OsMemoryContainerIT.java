package io.gomem.docker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.dockerjava.api.command.InspectContainerResponse;

import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.testcontainers.containers.GenericContainer;

/**
 * Runs gomem's demo ({@code io.gomem.demo.Demo}) in a container limited to 256 MiB (memory =
 * memory+swap, no network). The demo walks one region through every OS state (None, Reserved,
 * Prepared, Ready, Prepared, Reserved, None), checks the kernel's view at each step itself and
 * exits 0 only if every check held. Here we check, from outside, that it ran to the end inside the
 * limit: exit code 0, not OOM-killed, every OS call logged, and the cgroup limit seen from inside.
 *
 * <p>The image is {@code gomem.docker.baseImage} (the local FROM-scratch JDK 25 image that
 * {@code docker/build-images.sh} builds, by default) and is never pulled unless
 * {@code gomem.docker.pull=true}. gomem's jars come from {@code gomem.docker.appLib} (see
 * {@link GomemContainers}).
 */
class OsMemoryContainerIT {
    private static final long LIMIT = 256L << 20;
    private static final List<String> OS_CALLS =
            List.of("sysReserve", "sysMap", "sysUsed", "sysUnused", "sysFault", "sysFree");

    @Test
    @Timeout(150)
    void demoWalksEveryOsStateInsideA256MiBContainer() throws IOException {
        walk(GomemContainers.IMAGE, null);
    }

    /**
     * The same walk on a JDK 17 image ({@code gomem-jre:17-local}, built from {@code JAVA17_HOME}
     * by build-images.sh): the jar's JDK 17 part, its JNI backend asking the kernel, inside the
     * limit. Skipped when the build has no JDK 17 image to run ({@code gomem.docker.jdk17Image}
     * unset: no JAVA17_HOME).
     */
    @Test
    @Timeout(150)
    void onAJdk17ImageTheDemoWalksEveryOsStateOnTheJniBackend() throws IOException {
        String image = System.getProperty("gomem.docker.jdk17Image", "");
        Assumptions.assumeFalse(image.isBlank(), "no JDK 17 image: set JAVA17_HOME to a JDK 17 (with its jmods) to build one");
        walk(image, "Java 17 \\(.*\\), OS backend jni");
    }

    /** Runs the demo in a 256 MiB container of {@code image}; {@code expectJava}, if not null, matches its Java line. */
    private static void walk(String image, String expectJava) throws IOException {
        try (GenericContainer<?> demo = GomemContainers.container(image, LIMIT)) {
            // Exec form: the local image has no shell.
            demo.withCommand("java", "--enable-native-access=ALL-UNNAMED", "-Dgomem.debug=sys",
                    "-XshowSettings:system", "-cp", GomemContainers.classPath(), "io.gomem.demo.Demo");
            GomemContainers.Run run = GomemContainers.runToCompletion(demo, Duration.ofSeconds(120));
            InspectContainerResponse info = run.info();
            String out = run.out();
            String err = run.err();
            String logs = run.logs();

            assertEquals(LIMIT, info.getHostConfig().getMemory(), "container memory limit");
            assertEquals(LIMIT, info.getHostConfig().getMemorySwap(), "container memory+swap limit");
            assertEquals("none", info.getHostConfig().getNetworkMode(), "container network mode");
            assertFalse(Boolean.TRUE.equals(info.getState().getOOMKilled()), "the container was OOM-killed" + logs);
            assertEquals(0L, info.getState().getExitCodeLong(), "demo exit code" + logs);

            assertTrue(out.contains("demo: all checks passed"), "demo did not report all checks passed" + logs);
            if (expectJava != null) {
                assertTrue(Pattern.compile("(?m)^demo: " + expectJava + "$").matcher(out).find(),
                        "the demo's Java line does not match '" + expectJava + "'" + logs);
            }
            for (String call : OS_CALLS) {
                assertTrue(Pattern.compile("(?m)^gomem: " + call + "\\b").matcher(err).find(),
                        "no 'gomem: " + call + " ...' line on stderr (-Dgomem.debug=sys)" + logs);
            }

            // The limit as the demo read it from the cgroup (v1 memory.limit_in_bytes or v2 memory.max)...
            Matcher seen = Pattern.compile("(?m)^demo: cgroup memory limit (\\S+)").matcher(out);
            assertTrue(seen.find(), "demo printed no 'demo: cgroup memory limit' line" + logs);
            assertEquals(String.valueOf(LIMIT), seen.group(1), "cgroup memory limit seen inside the container");
            // ...and as the JVM itself detected it (-XshowSettings:system).
            assertTrue(err.contains("Memory Limit: 256.00M"), "the JVM did not detect the 256M container limit" + logs);
        }
    }

    /**
     * The same walk and heap on a simulated kernel with 64 KiB pages (arm64's largest;
     * {@code gomem.physPageSize}): every range the OS layer hands the kernel is then aligned to
     * 64 KiB (a misaligned one is refused and fails the demo), and the heap's pages still go back.
     */
    @Test
    @Timeout(150)
    void demoPassesWithSimulated64KiBPhysicalPages() throws IOException {
        try (GenericContainer<?> demo = GomemContainers.container(LIMIT)) {
            demo.withCommand("java", "--enable-native-access=ALL-UNNAMED", "-Dgomem.physPageSize=64k",
                    "-cp", GomemContainers.classPath(), "io.gomem.demo.Demo");
            GomemContainers.Run run = GomemContainers.runToCompletion(demo, Duration.ofSeconds(120));
            String logs = run.logs();
            assertEquals(0L, run.info().getState().getExitCodeLong(), "demo exit code" + logs);
            assertTrue(run.out().contains("demo: OS page size 65536 B"), "the demo ran with 64 KiB pages" + logs);
            assertTrue(run.out().contains("demo: all checks passed"), "demo did not report all checks passed" + logs);
        }
    }
}
