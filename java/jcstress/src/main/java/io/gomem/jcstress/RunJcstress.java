package io.gomem.jcstress;

import org.openjdk.jcstress.JCStress;
import org.openjdk.jcstress.Options;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SortedSet;

/**
 * Runs this module's jcstress tests and exits nonzero unless every one passed: jcstress's own
 * main exits 0 when it finds no test, and only throws when a result is bad. A test fails on a
 * forbidden outcome, an exception in an actor, or a forked VM that crashed or hung.
 *
 * <p>Arguments are jcstress's (e.g. {@code -m sanity}); every forked VM also gets
 * {@code --enable-native-access=ALL-UNNAMED}, which gomem's downcalls need.
 */
public final class RunJcstress {
    /**
     * The tests that must be found when no {@code -t} selects some: a missing test list (say, the
     * annotation processor did not run) fails the run instead of passing it with nothing run.
     */
    static final Set<String> TESTS = Set.of(CloseVsZeroedAllocation.class.getName(), MemStatsVsAllocation.class.getName());

    private RunJcstress() {
    }

    public static void main(String[] args) throws Exception {
        long start = System.nanoTime();
        List<String> all = new ArrayList<>(Arrays.asList(args));
        all.addAll(List.of("-jvmArgsPrepend", "--enable-native-access=ALL-UNNAMED"));
        Options options = new Options(all.toArray(new String[0]));
        if (!options.parse()) {
            System.exit(2);
        }
        JCStress jcstress = new JCStress(options);
        SortedSet<String> found = jcstress.getTests();
        if (!all.contains("-t") && !found.containsAll(TESTS)) {
            System.err.println("jcstress: expected the tests " + TESTS + ", found " + found);
            System.exit(2);
        }
        int status = 0;
        try {
            jcstress.run(); // ends by reading the results back; throws AssertionError if a test failed
        } catch (AssertionError failed) {
            System.err.println(failed.getMessage());
            status = 1;
        }
        System.out.printf("jcstress: %s in %.1f s%n", status == 0 ? "all tests passed" : "FAILED",
                (System.nanoTime() - start) / 1e9);
        System.exit(status);
    }
}
