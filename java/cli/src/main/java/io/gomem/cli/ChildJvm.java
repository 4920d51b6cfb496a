package io.gomem.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Starts a child JVM on this JVM's own java and class path (the gomem-cli jar, or the test class
 * path), with native access enabled and destroyed if this JVM exits first, and feeds its output
 * lines to the caller.
 */
final class ChildJvm {
    private ChildJvm() {
    }

    /** Starts {@code mainClass args} with {@code --enable-native-access=ALL-UNNAMED} and the given JVM flags and environment. */
    static Process start(List<String> jvmFlags, String mainClass, List<String> args, Map<String, String> env) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("--enable-native-access=ALL-UNNAMED");
        cmd.addAll(jvmFlags);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), mainClass));
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().putAll(env);
        try {
            Process p = pb.start();
            p.getOutputStream().close(); // no input
            Thread killer = new Thread(p::destroy); // the child does not outlive this JVM
            Runtime.getRuntime().addShutdownHook(killer);
            p.onExit().thenRun(() -> {
                try {
                    Runtime.getRuntime().removeShutdownHook(killer);
                } catch (IllegalStateException shuttingDown) {
                    // the hook runs, and destroys a process that has already exited
                }
            });
            return p;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + cmd.getFirst(), e);
        }
    }

    /** Calls {@code sink} with each line of {@code in} until it ends, on the calling thread. */
    static void lines(InputStream in, Consumer<String> sink) {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                sink.accept(line);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** As {@link #lines}, on a daemon thread of its own; join it to wait for the end. */
    static Thread pump(InputStream in, Consumer<String> sink) {
        return Thread.ofPlatform().name("child-output").daemon().start(() -> lines(in, sink));
    }
}
