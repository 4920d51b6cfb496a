package io.gomem.internal;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Field;

/**
 * Loads and stores at raw addresses, for the memory gomem touches itself (zeroing, clobberfree,
 * the demo, the kernel probes). This is the JDK 17 part of the jar, over {@code sun.misc.Unsafe}
 * (module jdk.unsupported), reached through method handles bound once, which the JIT inlines
 * like direct calls (a direct reference is a compile-time warning no annotation silences); the
 * jar's JDK 25 part has a twin over one {@code MemorySegment} spanning all memory, since Unsafe's
 * memory methods warn from JDK 24 on and are on their way out.
 *
 * <p>Owns nothing but the handles. Nothing is checked: callers keep the range mapped and
 * readable or writable (a lease, a held P, an open arena, their own mapping).
 */
public final class RawMemory {
    private RawMemory() {
    }

    private static final MethodHandle GET_BYTE;
    private static final MethodHandle PUT_BYTE;
    private static final MethodHandle GET_LONG;
    private static final MethodHandle PUT_LONG;
    private static final MethodHandle SET_MEMORY;

    static {
        try {
            Class<?> c = Class.forName("sun.misc.Unsafe");
            Field f = c.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            Object u = f.get(null);
            MethodHandles.Lookup l = MethodHandles.publicLookup();
            GET_BYTE = l.findVirtual(c, "getByte", MethodType.methodType(byte.class, long.class)).bindTo(u);
            PUT_BYTE = l.findVirtual(c, "putByte", MethodType.methodType(void.class, long.class, byte.class)).bindTo(u);
            GET_LONG = l.findVirtual(c, "getLong", MethodType.methodType(long.class, long.class)).bindTo(u);
            PUT_LONG = l.findVirtual(c, "putLong", MethodType.methodType(void.class, long.class, long.class)).bindTo(u);
            SET_MEMORY = l.findVirtual(c, "setMemory", MethodType.methodType(void.class, long.class, long.class, byte.class))
                    .bindTo(u);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    public static byte getByte(long address) {
        try {
            return (byte) GET_BYTE.invokeExact(address);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    public static void putByte(long address, byte value) {
        try {
            PUT_BYTE.invokeExact(address, value);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** The 8 bytes at {@code address}, any alignment, in the platform's byte order. */
    public static long getLong(long address) {
        try {
            return (long) GET_LONG.invokeExact(address);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Stores 8 bytes at {@code address}, any alignment, in the platform's byte order. */
    public static void putLong(long address, long value) {
        try {
            PUT_LONG.invokeExact(address, value);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Sets [address, address + n) to {@code value}. */
    public static void fill(long address, long n, byte value) {
        try {
            SET_MEMORY.invokeExact(address, n, value);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }
}
