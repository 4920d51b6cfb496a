package io.gomem.os;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The bindings are generated once and committed: this proves they still match this platform.
 * It compiles native/probe/constants.c with gcc against the same header jextract read, runs it,
 * and compares every constant named in bindings/jextract.args with the generated value and with
 * the value gomem's JNI library (native/jni/gomem_jni.c, the other backend) was compiled with.
 */
class BindingsMatchPlatformTest {
    /** The jextract bindings (the Panama backend's) exist from JDK 25; the JNI library's constants are checked on every JDK. */
    static final boolean PANAMA = Runtime.version().feature() >= 25;

    private static final Path NATIVE = Path.of(System.getProperty("gomem.native.dir", "../native"));
    private static final Path ARGS = NATIVE.resolveSibling("bindings").resolve("jextract.args");

    @TempDir
    static Path tmp;

    private static Map<String, Long> probe;

    private static synchronized Map<String, Long> probe() throws IOException, InterruptedException {
        if (probe == null) {
            Path exe = tmp.resolve("constants");
            run(List.of("gcc", "-Wall", "-Werror", "-I", NATIVE.resolve("include").toString(),
                    NATIVE.resolve("probe/constants.c").toString(), "-o", exe.toString()));
            Map<String, Long> values = new LinkedHashMap<>();
            for (String line : run(List.of(exe.toString())).split("\n")) {
                int sp = line.lastIndexOf(' ');
                values.put(line.substring(0, sp), Long.parseLong(line.substring(sp + 1)));
            }
            probe = values;
        }
        return probe;
    }

    private static String run(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "timed out: " + cmd);
        assertEquals(0, p.exitValue(), () -> cmd + " failed:\n" + out);
        return out;
    }

    static List<String> constantsInArgsFile() throws IOException {
        List<String> lines = Files.readAllLines(ARGS);
        List<String> names = new ArrayList<>();
        for (int i = 0; i < lines.size() - 1; i++) {
            if (lines.get(i).trim().equals("--include-constant")) {
                names.add(lines.get(i + 1).trim());
            }
        }
        return names;
    }

    @TestFactory
    List<DynamicTest> everyConstantMatchesTheCCompiler() throws IOException {
        List<DynamicTest> tests = new ArrayList<>();
        List<String> names = constantsInArgsFile();
        assertFalse(names.isEmpty(), "no --include-constant in " + ARGS);
        for (String name : names) {
            tests.add(DynamicTest.dynamicTest(name, () -> {
                Long c = probe().get(name);
                assertNotNull(c, name + " is in jextract.args but the C probe does not print it");
                if (PANAMA) { // the jextract bindings, read through the Panama backend (JDK 25+: the jar's part that has them)
                    long java = Syscalls.choose("panama").constant(name);
                    assertEquals(c.longValue(), java, name + ": C says " + c + ", bindings say " + java);
                }
                Long jni = JniSyscalls.constants().get(name);
                assertNotNull(jni, name + " is in jextract.args but gomem's JNI library (native/jni) does not carry it");
                assertEquals(c.longValue(), jni.longValue(), name + ": C says " + c + ", the JNI library says " + jni);
            }));
        }
        return tests;
    }

    /** The two backends carry the same set of constants: none only in the JNI library's table. */
    @Test
    void theJniLibraryCarriesExactlyTheBindingsConstants() throws IOException {
        assertEquals(new java.util.TreeSet<>(constantsInArgsFile()), new java.util.TreeSet<>(JniSyscalls.constants().keySet()));
    }

    @Test
    void pageSizeAgreesWithSysconf() throws Exception {
        assertEquals(probe().get("sysconf(_SC_PAGESIZE)").longValue(), OsMemory.PAGE_SIZE);
        assertEquals(OsMemory.PAGE_SIZE, JniSyscalls.constants().containsKey("_SC_PAGESIZE")
                ? Syscalls.choose("jni").sysconf((int) Syscalls.choose("jni").constant("_SC_PAGESIZE")) : -1);
        if (PANAMA) {
            Object pagesize = Class.forName("io.gomem.bindings.linux.LinuxSys").getMethod("getpagesize").invoke(null);
            assertEquals(OsMemory.PAGE_SIZE, ((Number) pagesize).longValue());
        }
    }
}
