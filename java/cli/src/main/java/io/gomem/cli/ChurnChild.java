package io.gomem.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.concurrent.Callable;

/**
 * {@code gomem churn-child} (hidden): the churn workload on one allocator, in a JVM of its own
 * that {@code gomem churn} starts, so that the process's RSS is that allocator's. Reports its
 * baseline, phases and samples on stdout in {@link ChurnRun}'s line protocol.
 */
@Command(name = "churn-child", hidden = true, mixinStandardHelpOptions = true,
        description = "Runs the churn workload on one allocator in this JVM (started by 'gomem churn').")
final class ChurnChild implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    WorkloadOptions options;

    @Option(names = "--allocator", required = true, paramLabel = "NAME", description = "gomem, malloc or jemalloc.")
    String allocatorName;

    @Override
    public Integer call() throws InterruptedException {
        String invalid = options.invalid();
        if (invalid != null) {
            throw new ParameterException(spec.commandLine(), invalid);
        }
        if (!Allocator.NAMES.contains(allocatorName)) {
            throw new ParameterException(spec.commandLine(), "Invalid value for option '--allocator': " + allocatorName
                    + " is not one of " + String.join(", ", Allocator.NAMES));
        }
        PrintWriter out = spec.commandLine().getOut();
        try (Allocator allocator = Allocator.open(allocatorName, options.softLimit, options.hardLimit)) {
            Workload workload = new Workload(options, allocator);
            out.println("baseline " + Sampler.vmRss());
            long t0 = System.nanoTime();
            try (Sampler sampler = new Sampler(allocator, workload, out, t0, options.intervalMs)) {
                workload.run(new Workload.Listener() {
                    @Override
                    public void phaseStarted(Workload.Phase phase) {
                        sampler.line("phase " + phase + " " + (System.nanoTime() - t0) / 1_000_000);
                    }

                    @Override
                    public void phaseEnded(Workload.Phase phase) {
                        sampler.sample(phase);
                    }
                });
                sampler.line("release-call " + workload.releaseNanos() / 1000);
                if (workload.refusals() > 0) {
                    sampler.line("note " + allocatorName + " refused " + workload.refusals()
                            + " allocation(s): the live size was not reached");
                }
                sampler.line("done " + (System.nanoTime() - t0) / 1_000_000);
            }
        }
        return 0;
    }
}
