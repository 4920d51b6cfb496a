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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

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
 * What the container tests share: the image (never pulled unless {@code gomem.docker.pull=true}),
 * the jars the build put in {@code gomem.docker.appLib} (gomem, gomem-bindings, and this module's
 * own jar with the workloads), containers with network {@code none} and memory = memory+swap,
 * the JVM flags that keep the JVM itself small, and the result of a container run to completion.
 */
final class GomemContainers {
    static final long MiB = 1L << 20;
    static final String IMAGE = System.getProperty("gomem.docker.baseImage", "gomem-jre:25-local");
    static final boolean PULL = Boolean.getBoolean("gomem.docker.pull");
    static final Path APP_LIB = Path.of(System.getProperty("gomem.docker.appLib", "target/app-lib"));
    static final String WORKLOADS_JAR = "gomem-docker-workloads.jar";
    static final String WORKLOAD_PACKAGE = "io.gomem.docker.workload.";

    /**
     * JVM flags for the workloads: native access for gomem, and a small JVM (heap, stacks, code
     * cache, metaspace, class space, direct memory) that stays well inside the container's limits
     * and reserves little address space. A crash report goes to stderr (the container's files are
     * gone after the test).
     */
    static final List<String> SMALL_JVM = List.of(
            "--enable-native-access=ALL-UNNAMED",
            "-Xms16m", "-Xmx64m", "-Xss512k", "-XX:MaxDirectMemorySize=16m",
            "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-XX:ReservedCodeCacheSize=32m", "-XX:MaxMetaspaceSize=64m", "-XX:CompressedClassSpaceSize=32m",
            "-XX:-UsePerfData", "-XX:+ErrorFileToStderr");

    private GomemContainers() {
    }

    /** The jars the build copied for the containers: gomem, gomem-bindings, the workloads. */
    static List<Path> appJars() throws IOException {
        if (!Files.isDirectory(APP_LIB)) {
            fail("no " + APP_LIB + ": run through Maven (mvn verify), which copies gomem's jars there");
        }
        List<Path> jars;
        try (Stream<Path> files = Files.list(APP_LIB)) {
            jars = new ArrayList<>(files.filter(f -> f.getFileName().toString().endsWith(".jar")).sorted().toList());
        }
        List<String> names = jars.stream().map(j -> j.getFileName().toString()).toList();
        assertTrue(names.contains("gomem.jar") && names.contains("gomem-bindings.jar") && names.contains(WORKLOADS_JAR),
                "expected gomem.jar, gomem-bindings.jar and " + WORKLOADS_JAR + " in " + APP_LIB + ", found " + names);
        return jars;
    }

    /** The class path inside the container: every app jar under /app/lib. */
    static String classPath() throws IOException {
        return appJars().stream().map(j -> "/app/lib/" + j.getFileName()).collect(Collectors.joining(":"));
    }

    /**
     * Skips the calling test (JUnit's assumption) when engine.sh found no Docker engine to use and
     * said why (the build passes the file it writes as {@code gomem.docker.skipFile}).
     */
    static void assumeEngine() throws IOException {
        String f = System.getProperty("gomem.docker.skipFile");
        if (f != null && Files.exists(Path.of(f))) {
            org.junit.jupiter.api.Assumptions.abort(Files.readString(Path.of(f)).strip());
        }
    }

    /**
     * A container of the test image with {@code memory} bytes of memory (memory = memory+swap), no
     * network, the app jars in /app/lib, never pulling the image unless allowed.
     */
    static GenericContainer<?> container(long memory) throws IOException {
        return container(IMAGE, memory);
    }

    /** As {@link #container(long)}, of {@code image} (e.g. the local JDK 17 image). */
    static GenericContainer<?> container(String image, long memory) throws IOException {
        assumeEngine();
        if (!PULL) {
            requireLocalImage(image);
        }
        ImagePullPolicy pullPolicy = PULL ? PullPolicy.defaultPolicy() : name -> false;
        GenericContainer<?> c = new GenericContainer<>(DockerImageName.parse(image))
                .withImagePullPolicy(pullPolicy)
                .withNetworkMode("none")
                .withCreateContainerCmdModifier(cmd -> cmd.getHostConfig()
                        .withMemory(memory)
                        .withMemorySwap(memory));
        for (Path jar : appJars()) {
            c.withCopyFileToContainer(MountableFile.forHostPath(jar), "/app/lib/" + jar.getFileName());
        }
        return c;
    }

    /**
     * The exec-form command running a workload: {@code java <SMALL_JVM> <extraJvm> -cp ... <main> <args>}.
     * {@code main} is a simple class name in {@link #WORKLOAD_PACKAGE} or a full one.
     */
    static String[] workloadCommand(List<String> extraJvm, String main, String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add("java");
        cmd.addAll(SMALL_JVM);
        String phys = System.getProperty("gomem.docker.physPageSize", "");
        if (!phys.isBlank()) {
            cmd.add("-Dgomem.physPageSize=" + phys); // the whole suite on a simulated kernel with bigger pages
        }
        cmd.addAll(extraJvm);
        cmd.add("-cp");
        cmd.add(classPath());
        cmd.add(main.contains(".") ? main : WORKLOAD_PACKAGE + main);
        cmd.addAll(List.of(args));
        return cmd.toArray(String[]::new);
    }

    /** Starts the container, waits until it exits (at most {@code timeout}) and collects what it did. */
    static Run runToCompletion(GenericContainer<?> c, Duration timeout) {
        c.withStartupCheckStrategy(new RunsToCompletion().withTimeout(timeout)).waitingFor(new NoWait());
        long start = System.nanoTime();
        c.start();
        Run run = collect(c, (System.nanoTime() - start) / 1_000_000);
        run.print();
        return run;
    }

    /** The state and output of a container that has exited. */
    static Run collect(GenericContainer<?> c, long millis) {
        InspectContainerResponse info = DockerClientFactory.instance().client()
                .inspectContainerCmd(c.getContainerId()).exec();
        return new Run(info, c.getLogs(OutputType.STDOUT), c.getLogs(OutputType.STDERR), millis);
    }

    static void requireLocalImage(String image) {
        DockerClient client = DockerClientFactory.instance().client();
        try {
            client.inspectImageCmd(image).exec();
        } catch (NotFoundException e) {
            fail("image " + image + " is not on the engine and pulling is off (gomem.docker.pull=false): build it"
                    + " with 'bash docker/build-images.sh' (mvn verify does), or pass -Dgomem.docker.pull=true");
        }
    }

    /** A finished container: its inspection, its output, and how long it ran. */
    record Run(InspectContainerResponse info, String out, String err, long millis) {
        /** Both streams, for assertion messages. */
        String logs() {
            return "\nstdout:\n" + out + "\nstderr:\n" + err;
        }

        void print() {
            System.out.println("---- container " + info.getId().substring(0, 12) + " ran " + millis + " ms, exit "
                    + info.getState().getExitCodeLong() + ", OOMKilled " + info.getState().getOOMKilled()
                    + " ----\n---- stdout ----\n" + out + "---- stderr ----\n" + err + "---- end ----");
        }

        /**
         * The checks every workload run must pass: the container's limits and network as asked,
         * not OOM-killed, no JVM crash, exit code 0, and a passing report line. Returns the
         * report's key=value pairs.
         */
        Map<String, String> assertPassed(String scenario, long memory) {
            assertEquals(memory, info.getHostConfig().getMemory(), "container memory limit");
            assertEquals(memory, info.getHostConfig().getMemorySwap(), "container memory+swap limit");
            assertEquals("none", info.getHostConfig().getNetworkMode(), "container network mode");
            assertFalse(Boolean.TRUE.equals(info.getState().getOOMKilled()), "the container was OOM-killed" + logs());
            assertFalse((out + err).contains("A fatal error has been detected by the Java Runtime Environment")
                    || (out + err).contains("hs_err"), "the JVM crashed" + logs());
            assertEquals(0L, info.getState().getExitCodeLong(), "workload exit code" + logs());
            assertFalse(Pattern.compile("(?m)^workload: FAILED").matcher(out).find(), "a workload check failed" + logs());
            Map<String, String> report = report(scenario);
            assertEquals("pass", report.get("result"), "workload result" + logs());
            assertEquals("0", report.get("failed"), "failed workload checks" + logs());
            return report;
        }

        /** The key=value pairs of the {@code workload: report scenario=<scenario> ...} line. */
        Map<String, String> report(String scenario) {
            Matcher m = Pattern.compile("(?m)^workload: report scenario=" + Pattern.quote(scenario) + " (.*)$").matcher(out);
            assertTrue(m.find(), "no 'workload: report scenario=" + scenario + "' line" + logs());
            Map<String, String> kv = new LinkedHashMap<>();
            for (String pair : m.group(1).trim().split("\\s+")) {
                int eq = pair.indexOf('=');
                if (eq > 0) {
                    kv.put(pair.substring(0, eq), pair.substring(eq + 1));
                }
            }
            return kv;
        }

        /** The first match of {@code regex} (multiline) in stdout; fails if none. */
        Matcher line(String regex) {
            Matcher m = Pattern.compile("(?m)" + regex).matcher(out);
            assertTrue(m.find(), "no stdout line matching " + regex + logs());
            return m;
        }
    }

    /** Start-up is done when the container has exited, whatever its exit code: the test judges that. */
    static final class RunsToCompletion extends StartupCheckStrategy {
        @Override
        public StartupStatus checkStartupState(DockerClient client, String containerId) {
            InspectContainerResponse.ContainerState state = getCurrentState(client, containerId);
            String status = state.getStatus();
            return "exited".equals(status) || "dead".equals(status)
                    ? StartupStatus.SUCCESSFUL
                    : StartupStatus.NOT_YET_KNOWN;
        }
    }

    /** Nothing to wait for (there are no ports): the tests follow the output themselves. */
    static final class NoWait extends AbstractWaitStrategy {
        @Override
        protected void waitUntilReady() {
        }
    }
}
