package io.gomem.bench;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Downcall handles to a C allocator's {@code malloc} and {@code free}, bound once and kept in
 * {@code static final} fields by the benchmarks so the JIT treats them as constants.
 *
 * <p>Pointers cross the boundary as {@code long} ({@code JAVA_LONG} in both directions; on
 * x86-64 an address and a 64-bit integer travel in the same register), so no
 * {@link MemorySegment} wrapper is made per call: the numbers measure the allocator plus the
 * downcall, nothing else.
 *
 * @param name    what the handles call, for messages
 * @param malloc  {@code (long size) -> long address}, or null when {@code error} is set
 * @param free    {@code (long address) -> void}, or null when {@code error} is set
 * @param error   why the allocator could not be bound, or null
 */
record NativeAllocator(String name, MethodHandle malloc, MethodHandle free, String error) {

    private static final FunctionDescriptor MALLOC = FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG);
    private static final FunctionDescriptor FREE = FunctionDescriptor.ofVoid(ValueLayout.JAVA_LONG);

    /** Binds {@code malloc}/{@code free} found through {@code lookup}, with the given linker options. */
    @SuppressWarnings("restricted") // downcallHandle: forks run with --enable-native-access
    static NativeAllocator bind(String name, SymbolLookup lookup, Linker.Option... options) {
        Linker linker = Linker.nativeLinker();
        MemorySegment m = lookup.find("malloc").orElse(null);
        MemorySegment f = lookup.find("free").orElse(null);
        if (m == null || f == null) {
            return failed(name, "symbol malloc or free not found");
        }
        return new NativeAllocator(name, linker.downcallHandle(m, MALLOC, options),
                linker.downcallHandle(f, FREE, options), null);
    }

    static NativeAllocator failed(String name, String error) {
        return new NativeAllocator(name, null, null, error);
    }

    /** Throws with {@link #error} if the allocator could not be bound; otherwise does one malloc/free. */
    void checkUsable(String howToFix) throws Throwable {
        if (error != null) {
            throw new IllegalStateException(name + " is not available: " + error + ". " + howToFix);
        }
        long p = (long) malloc.invokeExact(64L);
        if (p == 0) {
            throw new IllegalStateException(name + ": malloc(64) returned NULL");
        }
        free.invokeExact(p);
    }
}
