package io.gomem.cli;

import io.gomem.demo.Demo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code gomem demo}: runs the library's {@link Demo}, which walks one region through every state
 * of Go's OS state machine and asks the kernel at each step whether it agrees, then fills and
 * empties a heap. It runs in a child JVM: it reads the whole process's mappings and ends with
 * System.exit. Its lines are its progress; the exit code is its result (0 every check held, 1 not).
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"Walks a region through every OS state and prints the kernel's view at each step.",
            "The states are Go's (None, Reserved, Prepared, Ready); the kernel's view is /proc/self/maps, pagemap and"
                    + " mincore. Then fills and empties a heap and checks that its pages go back. Exit 0 if every check"
                    + " held, 1 if one failed."})
final class DemoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--trace", description = "Also print the OS layer's own line for each transition (gomem.debug=sys) on stderr.")
    boolean trace;

    @Override
    public Integer call() throws InterruptedException {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        List<String> flags = trace ? List.of("-Dgomem.debug=sys") : List.of();
        Process p = ChildJvm.start(flags, Demo.class.getName(), List.of(), Map.of());
        Thread errors = ChildJvm.pump(p.getErrorStream(), line -> {
            err.println(line);
            err.flush();
        });
        ChildJvm.lines(p.getInputStream(), line -> {
            out.println(line);
            out.flush();
        });
        int rc = p.waitFor();
        errors.join();
        return rc == 0 ? 0 : 1;
    }
}
