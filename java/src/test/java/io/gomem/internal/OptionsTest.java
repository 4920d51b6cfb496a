package io.gomem.internal;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Map;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OptionsTest {
    @Test
    void debugSwitchesHaveGodebugLevels() {
        assertEquals(0, Options.debugLevel("", "sys"));
        assertEquals(1, Options.debugLevel("sys", "sys"));
        assertEquals(2, Options.debugLevel("scavtrace, sys=2", "sys"));
        assertEquals(0, Options.debugLevel("sys=0", "sys"));
        assertEquals(0, Options.debugLevel("system", "sys"));
        assertEquals(1, Options.debugLevel("efence,sys", "efence"));
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> Options.debugLevel("sys=high", "sys"));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("gomem.debug=sys=high") && e.getMessage().contains("0 to 9"),
                e.getMessage());
    }

    @Test
    void environmentNamesFollowTheProperties() {
        assertEquals("GOMEM_DEBUG", Options.DEBUG.environmentName());
        assertEquals("GOMEM_SYS_UNUSED", Options.SYS_UNUSED_MODE.environmentName());
        assertEquals("GOMEM_CHECK_INVARIANTS", Options.CHECK_INVARIANTS.environmentName());
    }

    @Test
    void propertyWinsOverEnvironmentWhichWinsOverDefault() {
        Map<String, String> env = Map.of("GOMEM_SYS_UNUSED", "free");
        assertEquals("harddecommit", Options.SYS_UNUSED_MODE.value(k -> k.equals("gomem.sysUnused") ? "harddecommit" : null, env));
        assertEquals("free", Options.SYS_UNUSED_MODE.value(k -> null, env));
        assertEquals("dontneed", Options.SYS_UNUSED_MODE.value(k -> null, Map.of()));
    }

    @Test
    void theReadmeTableListsEveryOptionWithItsDefault() throws Exception {
        String readme = java.nio.file.Files.readString(java.nio.file.Path.of(System.getProperty("gomem.native.dir", "../native"))
                .resolveSibling("README.md"));
        for (Options o : Options.values()) {
            String def = o.defaultValue().isEmpty() ? "(empty)" : "`" + o.defaultValue() + "`";
            assertTrue(readme.contains("| `" + o.property() + "` | `" + o.environmentName() + "` | " + def + " |"),
                    "README's option table lacks the row of " + o.property() + " with default " + def);
        }
    }

    @Test
    void byteCountsParseWithSuffixes() {
        assertEquals(512L << 20, Options.parseBytes("512m"));
        assertEquals(2L << 30, Options.parseBytes("2g"));
        assertEquals(4096, Options.parseBytes("4096"));
        assertEquals(-1, Options.parseBytes("lots"));
        assertEquals(-1, Options.parseBytes("-5"));
        assertEquals(-1, Options.parseBytes("9999999999999t"));
    }

    /** A bad value of a numeric option: the error names the property, the variable, the value and the rule. */
    @ParameterizedTest(name = "{0}={1}")
    @CsvSource({
            "MEMORY_LIMIT, 0, at least 1",
            "MEMORY_LIMIT, -5, at least 1",
            "MEMORY_LIMIT, lots, at least 1",
            "MEMORY_LIMIT, 9999999999999t, at least 1",
            "HARD_MEMORY_LIMIT, 0, at least 1",
            "HARD_MEMORY_LIMIT, 0k, at least 1",
            "MEMORY_LIMIT_PERCENT, 0, from 1 to 100",
            "MEMORY_LIMIT_PERCENT, 101, from 1 to 100",
            "RETAIN_EXTRA_PERCENT, -1, from 0 to 10000",
            "SCAVENGER_CPU_PERCENT, 0.5, from 1 to 100"})
    void aBadNumericValueIsRefusedNamingThePropertyTheVariableTheValueAndTheRule(Options o, String bad, String rule) {
        for (boolean fromProperty : new boolean[] {true, false}) {
            Function<String, String> props = k -> fromProperty && k.equals(o.property()) ? bad : null;
            Map<String, String> env = fromProperty ? Map.of() : Map.of(o.environmentName(), bad);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> numeric(o, props, env));
            String m = e.getMessage();
            assertTrue(m.contains(o.property() + "=" + bad) && m.contains(o.environmentName()) && m.contains(rule),
                    "names " + o.property() + ", " + o.environmentName() + ", '" + bad + "' and '" + rule + "': " + m);
        }
    }

    private static long numeric(Options o, Function<String, String> props, Map<String, String> env) {
        return switch (o) {
            case MEMORY_LIMIT, HARD_MEMORY_LIMIT -> o.bytesValue(props, env, 1, Long.MAX_VALUE);
            case MEMORY_LIMIT_PERCENT, SCAVENGER_CPU_PERCENT -> o.intValue(props, env, 1, 100);
            case RETAIN_EXTRA_PERCENT -> o.intValue(props, env, 0, 10_000);
            default -> throw new IllegalArgumentException(o + " is not numeric");
        };
    }

    @Test
    void goodByteCountsAndOffAreAccepted() {
        Map<String, String> env = Map.of();
        assertEquals(1, Options.MEMORY_LIMIT.bytesValue(k -> "1", env, 1, -1));
        assertEquals(3L << 30, Options.HARD_MEMORY_LIMIT.bytesValue(k -> null, Map.of("GOMEM_HARD_MEMORY_LIMIT", "3g"), 1, -1));
        assertEquals(-1, Options.MEMORY_LIMIT.bytesValue(k -> "off", env, 1, -1));
        assertEquals(100, Options.MEMORY_LIMIT_PERCENT.intValue(k -> "100", env, 1, 100));
    }

    @Test
    void describeListsEveryOption() {
        String d = Options.describeEffective();
        for (Options o : Options.values()) {
            assertTrue(d.contains(o.property()) && d.contains(o.environmentName()), d);
        }
    }
}
