package io.gomem.os;

import io.gomem.internal.Options;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The JNI backend ({@code gomem.backend=jni}, the default below JDK 25): gomem's own C
 * ({@code native/jni/gomem_jni.c}), one shared object per platform packaged in the jar at
 * {@code io/gomem/os/native/<os>-<arch>/libgomem.so} and loaded at first use. Each native method
 * returns the kernel's result and reads errno in C right after the call, before anything else
 * runs, so a failure carries the same errno as through Panama.
 *
 * <p>Owns the loaded library (once per JVM, under the class's initialization lock) and the table
 * of constants the library was compiled with (immutable once built). Where the jar has no
 * library for the platform, the first use fails with an {@link UnsatisfiedLinkError} naming the
 * platform and the platforms the jar has; {@code gomem.jni.library} names a library built
 * elsewhere ({@code bash native/jni/build.sh DIR JAVA_HOME}).
 */
final class JniSyscalls implements Syscalls.Backend {
    /** The resource folder of the libraries: one sub-folder per platform. */
    static final String RESOURCES = "/io/gomem/os/native/";
    /** The platforms a build may package (native/jni/build.sh). */
    static final List<String> PLATFORMS = List.of("linux-x86_64", "linux-aarch64");

    private static final Map<String, Long> CONSTANTS;

    static {
        load();
        String[] names = constantNames();
        long[] values = constantValues();
        Map<String, Long> m = new HashMap<>();
        for (int i = 0; i < names.length; i++) {
            m.put(names[i], values[i]);
        }
        CONSTANTS = Map.copyOf(m);
    }

    JniSyscalls() {
    }

    @Override
    public String name() {
        return "jni";
    }

    @Override
    public long mmap(long addr, long len, int prot, int flags) {
        return mmap0(addr, len, prot, flags);
    }

    @Override
    public int munmap(long addr, long len) {
        return munmap0(addr, len);
    }

    @Override
    public int madvise(long addr, long len, int advice) {
        return madvise0(addr, len, advice);
    }

    @Override
    public int mprotect(long addr, long len, int prot) {
        return mprotect0(addr, len, prot);
    }

    @Override
    public int mincore(long addr, long len, byte[] vec) {
        return mincore0(addr, len, vec);
    }

    @Override
    public String strerror(int errno) {
        return strerror0(errno);
    }

    @Override
    public long constant(String name) {
        Long v = CONSTANTS.get(name);
        if (v == null) {
            throw new IllegalArgumentException("no constant " + name + " in gomem's JNI library (native/jni/gomem_jni.c)");
        }
        return v;
    }

    @Override
    public long sysconf(int name) {
        return sysconf0(name);
    }

    /** Every constant of the library, by name (for the bindings test). */
    static Map<String, Long> constants() {
        return CONSTANTS;
    }

    /**
     * The platform name of an {@code os.name} and {@code os.arch}, as the jar's folders name them:
     * {@code linux-x86_64}, {@code linux-aarch64}; others lower-cased as they come.
     */
    static String platform(String osName, String osArch) {
        String os = osName.toLowerCase(Locale.ROOT).startsWith("linux") ? "linux" : osName.toLowerCase(Locale.ROOT).replace(' ', '_');
        String arch = switch (osArch.toLowerCase(Locale.ROOT)) {
            case "amd64", "x86_64", "x86-64" -> "x86_64";
            case "aarch64", "arm64" -> "aarch64";
            default -> osArch.toLowerCase(Locale.ROOT);
        };
        return os + "-" + arch;
    }

    /** Loads the library named by {@code gomem.jni.library}, else the jar's one for this platform. */
    private static void load() {
        String explicit = Options.JNI_LIBRARY.value();
        if (!explicit.isEmpty()) {
            Path p = Path.of(explicit).toAbsolutePath();
            if (!Files.isRegularFile(p)) {
                throw Options.JNI_LIBRARY.refused(explicit, "no such file: " + p);
            }
            loadFile(p);
            return;
        }
        String platform = platform(System.getProperty("os.name", "?"), System.getProperty("os.arch", "?"));
        String resource = RESOURCES + platform + "/libgomem.so";
        try (InputStream in = JniSyscalls.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw noLibrary(platform, packaged());
            }
            Path tmp = Files.createTempFile("gomem-" + platform + "-", ".so");
            try {
                Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
                loadFile(tmp);
            } finally {
                Files.deleteIfExists(tmp); // the loader keeps its mapping: the file is not needed after load
            }
        } catch (IOException e) {
            throw new UncheckedIOException("gomem: extracting its JNI library " + resource + " to a temporary file", e);
        }
    }

    @SuppressWarnings("restricted") // gomem is a native-access module: see the README
    private static void loadFile(Path p) {
        System.load(p.toString());
    }

    /** The platforms this jar has a library for. */
    static List<String> packaged() {
        List<String> have = new ArrayList<>();
        for (String p : PLATFORMS) {
            if (JniSyscalls.class.getResource(RESOURCES + p + "/libgomem.so") != null) {
                have.add(p);
            }
        }
        return have;
    }

    /** The error of a platform with no library in the jar. */
    static UnsatisfiedLinkError noLibrary(String platform, List<String> have) {
        return new UnsatisfiedLinkError("gomem's JNI backend has no native library for " + platform
                + " in this jar (it has: " + (have.isEmpty() ? "none" : String.join(", ", have)) + "). Build one with"
                + " 'bash native/jni/build.sh DIR JAVA_HOME' and name it with -D" + Options.JNI_LIBRARY.property()
                + "=DIR/io/gomem/os/native/" + platform + "/libgomem.so, or use gomem.backend=panama on JDK "
                + Syscalls.PANAMA_FINAL + " or newer");
    }

    private static native long mmap0(long addr, long len, int prot, int flags);

    private static native int munmap0(long addr, long len);

    private static native int madvise0(long addr, long len, int advice);

    private static native int mprotect0(long addr, long len, int prot);

    private static native int mincore0(long addr, long len, byte[] vec);

    private static native String strerror0(int errno);

    private static native long sysconf0(int name);

    private static native String[] constantNames();

    private static native long[] constantValues();
}
