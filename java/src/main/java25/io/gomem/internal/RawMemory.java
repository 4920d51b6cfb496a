package io.gomem.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Loads and stores at raw addresses, for the memory gomem touches itself (zeroing, clobberfree,
 * the demo, the kernel probes). This is the JDK 25 part of the jar, over {@link #ALL}, one
 * segment over all of memory in the global scope, so that no call makes a restricted
 * (caller-sensitive) call or more than one slice; the JDK 17 part has a twin over
 * {@code sun.misc.Unsafe}.
 *
 * <p>Owns nothing but {@link #ALL}. Nothing is checked: callers keep the range mapped and
 * readable or writable (a lease, a held P, an open arena, their own mapping).
 */
public final class RawMemory {
    private RawMemory() {
    }

    /** All of memory (global scope: never closed; the callers' protocols keep their ranges mapped). */
    @SuppressWarnings("restricted") // gomem is a native-access module: see the README
    private static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);

    public static byte getByte(long address) {
        return ALL.get(ValueLayout.JAVA_BYTE, address);
    }

    public static void putByte(long address, byte value) {
        ALL.set(ValueLayout.JAVA_BYTE, address, value);
    }

    /** The 8 bytes at {@code address}, any alignment, in the platform's byte order. */
    public static long getLong(long address) {
        return ALL.get(ValueLayout.JAVA_LONG_UNALIGNED, address);
    }

    /** Stores 8 bytes at {@code address}, any alignment, in the platform's byte order. */
    public static void putLong(long address, long value) {
        ALL.set(ValueLayout.JAVA_LONG_UNALIGNED, address, value);
    }

    /** Sets [address, address + n) to {@code value}: the JDK's bulk fill of one slice. */
    public static void fill(long address, long n, byte value) {
        ALL.asSlice(address, n).fill(value);
    }
}
