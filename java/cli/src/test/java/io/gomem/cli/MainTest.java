package io.gomem.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The root command: --version, --help of every subcommand, and usage errors (one line naming the option, exit 2). */
class MainTest {
    @Test
    void versionNamesTheBuildAndTheJvm() {
        Cli.Result r = Cli.run("--version");
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().startsWith("gomem 0.") && r.out().contains("JVM " + Runtime.version()), r::toString);
    }

    @ParameterizedTest
    @ValueSource(strings = {"demo", "churn", "plot", "stats"})
    void everySubcommandHasHelp(String command) {
        Cli.Result r = Cli.run(command, "--help");
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().startsWith("Usage: gomem " + command), r::toString);
        assertTrue(Cli.run("help", command).out().startsWith("Usage: gomem " + command));
    }

    @Test
    void rootHelpListsTheSubcommandsButNotTheChild() {
        Cli.Result r = Cli.run("--help");
        assertEquals(0, r.code(), r::toString);
        for (String c : new String[]{"demo", "churn", "plot", "stats"}) {
            assertTrue(r.out().contains("  " + c + " "), c + " missing from\n" + r.out());
        }
        assertTrue(!r.out().contains("churn-child"), r::toString);
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "churn --bogus|'--bogus'",
        "churn --live -5|'--live'",
        "churn --live 12x|'--live'",
        "churn --free-fraction 2|'--free-fraction'",
        "churn --threads 0|'--threads'",
        "churn --interval 0|'--interval'",
        "churn --sizes huge|'--sizes'",
        "churn --duration 0|'--duration'",
        "churn --allocators gomem,tcmalloc|'--allocators'",
        "churn --soft-limit 0|'--soft-limit'",
        "plot /nonexistent/recording.jfr|'RECORDING'",
        "stats /nonexistent/recording.jfr|'RECORDING'",
        "stats|'RECORDING'",
        "frobnicate|'frobnicate'",
    })
    void badUsageIsOneLineNamingTheOptionAndExit2(String args, String named) {
        Cli.Result r = Cli.run(args.split(" "));
        assertEquals(2, r.code(), r::toString);
        assertEquals(1, r.errLines().length, r::toString);
        assertTrue(r.errLines()[0].contains(named), r::toString);
        assertTrue(r.errLines()[0].startsWith("gomem"), r::toString);
        assertEquals("", r.out(), r::toString);
    }

    @Test
    void noSubcommandIsBadUsage() {
        Cli.Result r = Cli.run();
        assertEquals(2, r.code(), r::toString);
        assertEquals(1, r.errLines().length, r::toString);
    }
}
