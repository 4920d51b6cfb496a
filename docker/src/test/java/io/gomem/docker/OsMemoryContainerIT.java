package io.gomem.docker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.command.InspectContainerResponse;
import com.github.dockerjava.api.exception.NotFoundException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.output.OutputFrame.OutputType;
import org.testcontainers.containers.startupcheck.StartupCheckStrategy;
import org.testcontainers.containers.wait.strategy.AbstractWaitStrategy;
import org.testcontainers.images.ImagePullPolicy;
import org.testcontainers.images.PullPolicy;
import org.testcontainers.utility.DockerImageName;
import org.testcontainers.utility.MountableFile;

/**
 * Runs gomem's demo ({@code io.gomem.demo.Demo}) in a container limited to 256 MiB (memory =
 * memory+swap, no network). The demo walks one region through every OS state (None, Reserved,
 * Prepared, Ready, Prepared, Reserved, None), checks the kernel's view at each step itself and
 * exits 0 only if every check held. Here we check, from outside, that it ran to the end inside the
 * limit: exit code 0, not OOM-killed, every OS call logged, and the cgroup limit seen from inside.
 *
 * <p>The image is {@code gomem.docker.baseImage} (the local FROM-scratch JDK 25 image that
 * {@code docker/build-images.sh} builds, by default) and is never pulled unless
 * {@code gomem.docker.pull=true}. gomem's jars come from {@code gomem.docker.appLib}.
 */
class OsMemoryContainerIT {
    private static final long LIMIT = 256L << 20;
    private static final String IMAGE = System.getProperty("gomem.docker.baseImage", "gomem-jre:25-local");
    private static final boolean PULL = Boolean.getBoolean("gomem.docker.pull");
    private static final Path APP_LIB = Path.of(System.getProperty("gomem.docker.appLib", "target/app-lib"));
    private static final List<String> OS_CALLS =
            List.of("sysReserve", "sysMap", "sysUsed", "sysUnused", "sysFault", "sysFree");

    @Test
    @Timeout(150)
    void demoWalksEveryOsStateInsideA256MiBContainer() throws IOException {
        List<Path> jars = appJars();
        String classPath = jars.stream().map(j -> "/app/lib/" + j.getFileName()).collect(Collectors.joining(":"));
        ImagePullPolicy pullPolicy = PULL ? PullPolicy.defaultPolicy() : name -> false;
        if (!PULL) {
            requireLocalImage();
        }

        try (GenericContainer<?> demo = new GenericContainer<>(DockerImageName.parse(IMAGE))) {
            demo.withImagePullPolicy(pullPolicy)
                    .withNetworkMode("none")
                    .withCreateContainerCmdModifier(cmd -> cmd.getHostConfig()
                            .withMemory(LIMIT)
                            .withMemorySwap(LIMIT))
                    // Exec form: the local image has no shell.
                    .withCommand("java", "--enable-native-access=ALL-UNNAMED", "-Dgomem.debug=sys",
                            "-XshowSettings:system", "-cp", classPath, "io.gomem.demo.Demo")
                    .withStartupCheckStrategy(new RunsToCompletion().withTimeout(Duration.ofSeconds(120)))
                    .waitingFor(new NoWait());
            for (Path jar : jars) {
                demo.withCopyFileToContainer(MountableFile.forHostPath(jar), "/app/lib/" + jar.getFileName());
            }
            demo.start();

            InspectContainerResponse info = demo.getCurrentContainerInfo();
            String out = demo.getLogs(OutputType.STDOUT);
            String err = demo.getLogs(OutputType.STDERR);
            System.out.println("---- container stdout ----\n" + out + "---- container stderr ----\n" + err);
            String logs = "\nstdout:\n" + out + "\nstderr:\n" + err;

            assertEquals(LIMIT, info.getHostConfig().getMemory(), "container memory limit");
            assertEquals(LIMIT, info.getHostConfig().getMemorySwap(), "container memory+swap limit");
            assertEquals("none", info.getHostConfig().getNetworkMode(), "container network mode");
            assertFalse(Boolean.TRUE.equals(info.getState().getOOMKilled()), "the container was OOM-killed" + logs);
            assertEquals(0L, info.getState().getExitCodeLong(), "demo exit code" + logs);

            assertTrue(out.contains("demo: all checks passed"), "demo did not report all checks passed" + logs);
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

    /** gomem's jars (gomem.jar, gomem-bindings.jar) as the build copied them for the containers. */
    private static List<Path> appJars() throws IOException {
        if (!Files.isDirectory(APP_LIB)) {
            fail("no " + APP_LIB + ": run through Maven (mvn verify), which copies gomem's jars there");
        }
        List<Path> jars;
        try (Stream<Path> files = Files.list(APP_LIB)) {
            jars = new ArrayList<>(files.filter(f -> f.getFileName().toString().endsWith(".jar")).sorted().toList());
        }
        List<String> names = jars.stream().map(j -> j.getFileName().toString()).toList();
        assertTrue(names.contains("gomem.jar") && names.contains("gomem-bindings.jar"),
                "expected gomem.jar and gomem-bindings.jar in " + APP_LIB + ", found " + names);
        return jars;
    }

    private static void requireLocalImage() {
        DockerClient client = DockerClientFactory.instance().client();
        try {
            client.inspectImageCmd(IMAGE).exec();
        } catch (NotFoundException e) {
            fail("image " + IMAGE + " is not on the engine and pulling is off (gomem.docker.pull=false): build it"
                    + " with 'bash docker/build-images.sh' (mvn verify does), or pass -Dgomem.docker.pull=true");
        }
    }

    /** Start-up is done when the container has exited, whatever its exit code: the test judges that. */
    private static final class RunsToCompletion extends StartupCheckStrategy {
        @Override
        public StartupStatus checkStartupState(DockerClient client, String containerId) {
            InspectContainerResponse.ContainerState state = getCurrentState(client, containerId);
            String status = state.getStatus();
            return "exited".equals(status) || "dead".equals(status)
                    ? StartupStatus.SUCCESSFUL
                    : StartupStatus.NOT_YET_KNOWN;
        }
    }

    /** Nothing to wait for once the container has exited (there are no ports). */
    private static final class NoWait extends AbstractWaitStrategy {
        @Override
        protected void waitUntilReady() {
        }
    }
}
