package io.gomem.bench;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Field;

/**
 * {@code sun.misc.Unsafe.allocateMemory} / {@code freeMemory}, reached by reflection on
 * {@code theUnsafe} so nothing is compiled against the internal API. These methods are
 * deprecated for removal (JEP 471) and warn on first use from JDK 24 (JEP 498); forks that use
 * them pass {@code --sun-misc-unsafe-memory-access=allow}. {@link #check()} fails clearly on a
 * JDK that no longer allows them.
 */
final class UnsafeMemory {
    private UnsafeMemory() {
    }

    /** {@code (long size) -> long address}, bound to the Unsafe instance; null if unreachable. */
    static final MethodHandle ALLOCATE;
    /** {@code (long address) -> void}; null if unreachable. */
    static final MethodHandle FREE;
    private static final String ERROR;

    static {
        MethodHandle allocate = null;
        MethodHandle free = null;
        String error = null;
        try {
            Class<?> unsafeClass = Class.forName("sun.misc.Unsafe");
            Field theUnsafe = unsafeClass.getDeclaredField("theUnsafe");
            theUnsafe.setAccessible(true);
            Object unsafe = theUnsafe.get(null);
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            allocate = lookup.findVirtual(unsafeClass, "allocateMemory", MethodType.methodType(long.class, long.class))
                    .bindTo(unsafe);
            free = lookup.findVirtual(unsafeClass, "freeMemory", MethodType.methodType(void.class, long.class))
                    .bindTo(unsafe);
        } catch (ReflectiveOperationException | RuntimeException e) {
            error = e.toString();
        }
        ALLOCATE = allocate;
        FREE = free;
        ERROR = error;
    }

    static void check() throws Throwable {
        if (ERROR != null) {
            throw new IllegalStateException("sun.misc.Unsafe is not reachable on this JDK (" + ERROR
                    + "); skip the Unsafe benchmarks");
        }
        try {
            long p = (long) ALLOCATE.invokeExact(64L);
            FREE.invokeExact(p);
        } catch (UnsupportedOperationException e) {
            throw new IllegalStateException("this JDK refuses sun.misc.Unsafe memory access (" + e.getMessage()
                    + "); run with --sun-misc-unsafe-memory-access=allow or skip the Unsafe benchmarks", e);
        }
    }
}
