package io.gomem.cli;

import io.gomem.GoHeap;
import io.gomem.stats.MemStats;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * One allocator the churn runs on, behind the same calls: gomem ({@link GoHeap}), glibc's
 * malloc and jemalloc (Debian's libjemalloc2, loaded with {@code SymbolLookup.libraryLookup} so
 * that only these calls go to it; the JVM that loads it needs {@value #JEMALLOC_TUNABLE} in its
 * environment, or dlopen runs out of static TLS space).
 */
sealed interface Allocator extends AutoCloseable {
    List<String> NAMES = List.of("gomem", "malloc", "jemalloc");
    String JEMALLOC_TUNABLE = "glibc.rtld.optional_static_tls=16384";
    /** The system property that names the jemalloc library to load, instead of looking in the usual places. */
    String JEMALLOC_PROPERTY = "gomem.cli.jemalloc";

    String name();

    /** Allocates {@code size} bytes; OutOfMemoryError if the allocator refuses. */
    long allocate(long size);

    void free(long address);

    /** Gives this thread's cached memory back to the allocator (jemalloc's tcache); called by each worker at the end. */
    void flushThread();

    /** Asks the allocator to return its free memory to the OS. */
    void release();

    /** gomem's own figures, or null for the others. */
    MemStats stats();

    @Override
    void close();

    /** Where libjemalloc.so.2 is: {@value #JEMALLOC_PROPERTY} if set, else the first usual place that has it; if anywhere. */
    static Optional<Path> jemallocLibrary() {
        String set = System.getProperty(JEMALLOC_PROPERTY);
        if (set != null) {
            return Optional.of(Path.of(set)).filter(Files::isReadable);
        }
        return List.of("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib")
                .stream().map(d -> Path.of(d, "libjemalloc.so.2")).filter(Files::isReadable).findFirst();
    }

    /** Opens the allocator called {@code name} (one of {@link #NAMES}). */
    static Allocator open(String name, long softLimit, long hardLimit) {
        return switch (name) {
            case "gomem" -> new Gomem(softLimit, hardLimit);
            case "malloc" -> Native.glibc();
            case "jemalloc" -> Native.jemalloc();
            default -> throw new IllegalArgumentException("no allocator " + name + ": one of " + NAMES);
        };
    }

    /** gomem: a GoHeap with the given limits (0: the default). */
    final class Gomem implements Allocator {
        private final GoHeap heap;

        Gomem(long softLimit, long hardLimit) {
            GoHeap.Builder b = GoHeap.builder();
            if (softLimit > 0) {
                b.memoryLimit(softLimit);
            }
            if (hardLimit > 0) {
                b.hardMemoryLimit(hardLimit);
            }
            heap = b.build();
        }

        @Override
        public String name() {
            return "gomem";
        }

        @Override
        public long allocate(long size) {
            return heap.allocate(size);
        }

        @Override
        public void free(long address) {
            heap.free(address);
        }

        @Override
        public void flushThread() {
        }

        @Override
        public void release() {
            heap.releaseMemory();
        }

        @Override
        public MemStats stats() {
            return heap.memStats();
        }

        @Override
        public void close() {
            heap.close();
        }
    }

    /** A C allocator through FFM downcalls: malloc and free, and what makes it return memory. */
    @SuppressWarnings("restricted") // the churn child runs with --enable-native-access=ALL-UNNAMED
    final class Native implements Allocator {
        private static final Linker LINKER = Linker.nativeLinker();
        private final String name;
        private final MethodHandle malloc;
        private final MethodHandle free;
        private final Runnable flushThread;
        private final Runnable release;

        private Native(String name, SymbolLookup lookup, Runnable flushThread, Runnable release) {
            this.name = name;
            Linker.Option critical = Linker.Option.critical(false); // malloc and free never call back into Java
            this.malloc = LINKER.downcallHandle(find(lookup, "malloc"),
                    FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG), critical);
            this.free = LINKER.downcallHandle(find(lookup, "free"), FunctionDescriptor.ofVoid(ValueLayout.JAVA_LONG), critical);
            this.flushThread = flushThread;
            this.release = release;
        }

        /** glibc: {@code malloc_trim(0)} returns the free memory of every arena. */
        static Native glibc() {
            SymbolLookup lookup = LINKER.defaultLookup();
            MethodHandle trim = LINKER.downcallHandle(find(lookup, "malloc_trim"),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
            return new Native("malloc", lookup, () -> { }, () -> {
                try {
                    int trimmed = (int) trim.invokeExact(0L); // 1 if memory went back, 0 if none could
                } catch (Throwable t) {
                    throw new IllegalStateException("malloc_trim failed", t);
                }
            });
        }

        /**
         * jemalloc: {@code mallctl("thread.tcache.flush")} empties a thread's cache, then
         * {@code mallctl("arena.4096.purge")} purges every arena (4096 = MALLCTL_ARENAS_ALL).
         */
        static Native jemalloc() {
            Path lib = jemallocLibrary().orElseThrow(() -> new IllegalStateException(
                    "libjemalloc.so.2 not found (apt-get install libjemalloc2, or -D" + JEMALLOC_PROPERTY + "=PATH)"));
            SymbolLookup lookup;
            try {
                lookup = SymbolLookup.libraryLookup(lib, Arena.global());
            } catch (IllegalArgumentException e) {
                throw new IllegalStateException("loading " + lib + " failed (" + e.getMessage() + "): start the JVM with"
                        + " GLIBC_TUNABLES=" + JEMALLOC_TUNABLE + " in its environment", e);
            }
            MethodHandle mallctl = LINKER.downcallHandle(find(lookup, "mallctl"), FunctionDescriptor.of(ValueLayout.JAVA_INT,
                    ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
            return new Native("jemalloc", lookup, () -> mallctl(mallctl, "thread.tcache.flush"), () -> {
                mallctl(mallctl, "thread.tcache.flush");
                mallctl(mallctl, "arena.4096.purge");
            });
        }

        /** {@code mallctl(ctl, NULL, NULL, NULL, 0)}: a control with no input or output. */
        private static void mallctl(MethodHandle mallctl, String ctl) {
            int rc;
            try (Arena arena = Arena.ofConfined()) {
                rc = (int) mallctl.invokeExact(arena.allocateFrom(ctl), MemorySegment.NULL, MemorySegment.NULL,
                        MemorySegment.NULL, 0L);
            } catch (Throwable t) {
                throw new IllegalStateException("mallctl(\"" + ctl + "\") failed", t);
            }
            if (rc != 0) {
                throw new IllegalStateException("mallctl(\"" + ctl + "\") returned " + rc);
            }
        }

        private static MemorySegment find(SymbolLookup lookup, String symbol) {
            return lookup.find(symbol).orElseThrow(() -> new IllegalStateException("symbol " + symbol + " not found"));
        }

        @Override
        public String name() {
            return name;
        }

        @Override
        public long allocate(long size) {
            long p;
            try {
                p = (long) malloc.invokeExact(size);
            } catch (Throwable t) {
                throw new IllegalStateException(name + ": malloc failed", t);
            }
            if (p == 0) {
                throw new OutOfMemoryError(name + ": malloc(" + size + ") returned NULL");
            }
            return p;
        }

        @Override
        public void free(long address) {
            try {
                free.invokeExact(address);
            } catch (Throwable t) {
                throw new IllegalStateException(name + ": free failed", t);
            }
        }

        @Override
        public void flushThread() {
            flushThread.run();
        }

        @Override
        public void release() {
            release.run();
        }

        @Override
        public MemStats stats() {
            return null;
        }

        @Override
        public void close() {
        }
    }
}
