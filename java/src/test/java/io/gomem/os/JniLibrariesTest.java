package io.gomem.os;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every JNI library the build packaged (one per platform the machine could compile for: its own,
 * and others with a cross compiler, see native/jni/build.sh) is a 64-bit little-endian ELF shared
 * object for the platform its folder names, and defines the function of every native method of
 * {@link JniSyscalls}, so a platform this machine cannot run is still checked.
 */
class JniLibrariesTest {
    /** ELF e_machine of each platform gomem may package. */
    static final Map<String, Integer> MACHINE = Map.of("linux-x86_64", 62, "linux-aarch64", 183);

    static byte[] library(String platform) throws IOException {
        try (InputStream in = JniSyscalls.class.getResourceAsStream(JniSyscalls.RESOURCES + platform + "/libgomem.so")) {
            return in == null ? null : in.readAllBytes();
        }
    }

    @Test
    void everyPackagedLibraryIsAnElfOfItsPlatformWithEveryNativeMethod() throws IOException {
        List<String> natives = new ArrayList<>();
        for (Method m : JniSyscalls.class.getDeclaredMethods()) {
            if (Modifier.isNative(m.getModifiers())) {
                natives.add("Java_io_gomem_os_JniSyscalls_" + m.getName());
            }
        }
        assertTrue(natives.size() >= 9, "native methods: " + natives);
        List<String> packaged = JniSyscalls.packaged();
        assertFalse(packaged.isEmpty(), "the jar has no JNI library");
        for (String platform : packaged) {
            byte[] so = library(platform);
            assertNotNull(so, platform);
            ByteBuffer h = ByteBuffer.wrap(so).order(ByteOrder.LITTLE_ENDIAN);
            assertEquals(0x464c457f, h.getInt(0), platform + ": ELF magic");
            assertEquals(2, so[4], platform + ": ELFCLASS64");
            assertEquals(1, so[5], platform + ": little-endian");
            assertEquals(3, h.getShort(16), platform + ": ET_DYN (a shared object)");
            Integer machine = MACHINE.get(platform);
            assertNotNull(machine, "a library for an unknown platform: " + platform);
            assertEquals(machine.intValue(), h.getShort(18) & 0xffff, platform + ": e_machine");
            String text = new String(so, StandardCharsets.ISO_8859_1);
            for (String symbol : natives) {
                assertTrue(text.contains(symbol + '\0'), platform + " lacks " + symbol);
            }
        }
        String here = JniSyscalls.platform(System.getProperty("os.name"), System.getProperty("os.arch"));
        assertTrue(packaged.contains(here), "the jar has this machine's platform " + here + ": " + packaged);
        System.out.println("JNI libraries packaged: " + packaged);
    }
}
