package io.gomem.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * jemalloc (Debian's {@code libjemalloc2}) loaded with {@code SymbolLookup.libraryLookup}, so
 * only the benchmark's calls go to it and the JVM itself keeps glibc. {@link #PLAIN} and
 * {@link #CRITICAL} handles to its {@code malloc}/{@code free}, and {@code mallctl} for
 * {@link Footprint}.
 *
 * <p>Two things must be in place, or {@link #check()} fails with a message saying which:
 * <ul>
 *   <li>the library: {@code apt-get install libjemalloc2} (path {@value #DEFAULT_PATH}; another
 *       one with {@code -Dgomem.bench.jemalloc=PATH});</li>
 *   <li>room for its initial-exec TLS: loading it after start-up fails with "cannot allocate
 *       memory in static TLS block" unless the JVM was started with {@value #TUNABLE} in its
 *       environment. glibc reads tunables only when a process starts and JMH 1.37 cannot set a
 *       fork's environment, so set it for the JMH launcher, whose environment the forks inherit:
 *       {@code java/benchmarks/run.sh} does that.</li>
 * </ul>
 */
@SuppressWarnings("restricted") // libraryLookup, downcallHandle: native access is granted to the fork
final class Jemalloc {
    private Jemalloc() {
    }

    static final String DEFAULT_PATH = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
    static final String TUNABLE = "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384";

    static final NativeAllocator PLAIN;
    static final NativeAllocator CRITICAL;
    /** {@code int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)}, or null. */
    static final MethodHandle MALLCTL;

    static {
        Path path = Path.of(System.getProperty("gomem.bench.jemalloc", DEFAULT_PATH));
        NativeAllocator plain;
        NativeAllocator critical;
        MethodHandle mallctl = null;
        if (!Files.exists(path)) {
            plain = NativeAllocator.failed("jemalloc", path + " does not exist");
            critical = plain;
        } else {
            try {
                SymbolLookup lookup = SymbolLookup.libraryLookup(path, Arena.global());
                plain = NativeAllocator.bind("jemalloc", lookup);
                critical = NativeAllocator.bind("jemalloc (critical)", lookup, Linker.Option.critical(false));
                MemorySegment m = lookup.find("mallctl").orElse(null);
                if (m != null) {
                    mallctl = Linker.nativeLinker().downcallHandle(m, FunctionDescriptor.of(ValueLayout.JAVA_INT,
                            ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                            ValueLayout.JAVA_LONG));
                }
            } catch (IllegalArgumentException | IllegalCallerException e) {
                // The JDK's message omits dlerror(); for libjemalloc2 it is almost always
                // "cannot allocate memory in static TLS block" (no tunable at JVM start).
                plain = NativeAllocator.failed("jemalloc", "loading " + path + " failed (" + e.getMessage()
                        + "); if the file is fine, dlopen most likely ran out of static TLS space");
                critical = plain;
            }
        }
        PLAIN = plain;
        CRITICAL = critical;
        MALLCTL = mallctl;
    }

    /** Throws, saying what to install or set, unless both handles work. */
    static void check() throws Throwable {
        String fix = "Install it with `apt-get install libjemalloc2` (or point -Dgomem.bench.jemalloc at the .so), and"
                + " start the JMH launcher with " + TUNABLE + " in its environment (java/benchmarks/run.sh does);"
                + " this JVM has GLIBC_TUNABLES=" + System.getenv("GLIBC_TUNABLES");
        PLAIN.checkUsable(fix);
        CRITICAL.checkUsable(fix);
    }

    /** {@code mallctl(name, NULL, NULL, NULL, 0)}: a control with no input or output; throws on a nonzero result. */
    static void mallctl(String name) throws Throwable {
        if (MALLCTL == null) {
            throw new IllegalStateException("jemalloc's mallctl is not available: " + PLAIN.error());
        }
        try (Arena arena = Arena.ofConfined()) {
            int rc = (int) MALLCTL.invokeExact(arena.allocateFrom(name), MemorySegment.NULL, MemorySegment.NULL,
                    MemorySegment.NULL, 0L);
            if (rc != 0) {
                throw new IllegalStateException("mallctl(\"" + name + "\") returned " + rc);
            }
        }
    }
}
