package io.gomem.bench;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * glibc's allocator through FFM downcalls, bound once: {@code malloc}/{@code free} with plain
 * handles ({@link #PLAIN}) and with handles linked {@code Linker.Option.critical(false)}
 * ({@link #CRITICAL}: no thread-state transition, allowed because malloc and free neither block
 * for long nor call back into Java), and {@code malloc_trim} for {@link Footprint}.
 */
final class Glibc {
    private Glibc() {
    }

    static final String FIX = "malloc/free should always be found in the default lookup";

    static final NativeAllocator PLAIN = NativeAllocator.bind("glibc malloc", Linker.nativeLinker().defaultLookup());
    static final NativeAllocator CRITICAL = NativeAllocator.bind("glibc malloc (critical)",
            Linker.nativeLinker().defaultLookup(), Linker.Option.critical(false));

    /** {@code int malloc_trim(size_t pad)}. */
    @SuppressWarnings("restricted") // forks and Footprint run with native access
    static final MethodHandle MALLOC_TRIM = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("malloc_trim").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
}
