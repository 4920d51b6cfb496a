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
    void describeListsEveryOption() {
        String d = Options.describeEffective();
        for (Options o : Options.values()) {
            assertTrue(d.contains(o.property()) && d.contains(o.environmentName()), d);
        }
    }
}
