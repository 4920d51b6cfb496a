package io.gomem.internal;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OptionsTest {
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
        assertEquals(512L << 20, Options.parseBytes("x", "512m", -1));
        assertEquals(2L << 30, Options.parseBytes("x", "2g", -1));
        assertEquals(4096, Options.parseBytes("x", "4096", -1));
        assertEquals(-1, Options.parseBytes("x", "off", -1));
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> Options.parseBytes("gomem.memoryLimit", "lots", -1));
        assertTrue(e.getMessage().contains("gomem.memoryLimit=lots"), e.getMessage());
    }

    @Test
    void describeListsEveryOption() {
        String d = Options.describeEffective();
        for (Options o : Options.values()) {
            assertTrue(d.contains(o.property()) && d.contains(o.environmentName()), d);
        }
    }
}
