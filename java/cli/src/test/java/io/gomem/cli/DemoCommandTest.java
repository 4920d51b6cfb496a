package io.gomem.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code gomem demo} end to end: the library's demo in a child JVM, its lines passed on, its result as the exit code. */
class DemoCommandTest {
    @Test
    void demoPassesEveryCheck() {
        Cli.Result r = Cli.run("demo");
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("demo: sysReserve: None -> Reserved"), r::toString);
        assertTrue(r.out().strip().endsWith("demo: all checks passed"), r::toString);
    }

    @Test
    void traceShowsTheOsLayersOwnLines() {
        Cli.Result r = Cli.run("demo", "--trace");
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.err().contains("sysReserve"), r::toString);
    }
}
