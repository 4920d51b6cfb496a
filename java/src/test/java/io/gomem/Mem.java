package io.gomem;

import io.gomem.internal.RawMemory;

/**
 * A bounds-checked view of raw memory for tests that run on JDK 17 as well as 25 (where a
 * {@code MemorySegment} would do): loads and stores at offsets in [0, length), through
 * {@link RawMemory} (multi-byte values little-endian, as on x86-64 and arm64 Linux).
 */
public final class Mem {
    private final long address;
    private final long length;

    private Mem(long address, long length) {
        this.address = address;
        this.length = length;
    }

    /** The {@code length} bytes at {@code address}. */
    public static Mem at(long address, long length) {
        return new Mem(address, length);
    }

    public long address() {
        return address;
    }

    public long byteSize() {
        return length;
    }

    private long addr(long offset, long n) {
        if (offset < 0 || n > length || offset > length - n) {
            throw new IndexOutOfBoundsException("offset " + offset + " + " + n + " outside [0, " + length + ")");
        }
        return address + offset;
    }

    public byte getByte(long offset) {
        return RawMemory.getByte(addr(offset, 1));
    }

    public void setByte(long offset, byte value) {
        RawMemory.putByte(addr(offset, 1), value);
    }

    /** The 4 bytes at {@code offset}, in the platform's byte order. */
    public int getInt(long offset) {
        long a = addr(offset, 4);
        return (RawMemory.getByte(a) & 0xff) | (RawMemory.getByte(a + 1) & 0xff) << 8
                | (RawMemory.getByte(a + 2) & 0xff) << 16 | (RawMemory.getByte(a + 3) & 0xff) << 24;
    }

    public long getLong(long offset) {
        return RawMemory.getLong(addr(offset, 8));
    }

    public void setLong(long offset, long value) {
        RawMemory.putLong(addr(offset, 8), value);
    }

    public Mem fill(byte value) {
        RawMemory.fill(address, length, value);
        return this;
    }

    public Mem asSlice(long offset, long n) {
        return new Mem(addr(offset, n), n);
    }

    /** The offset of the first byte that is not 0, or -1 if every byte is 0. */
    public long firstNonZero() {
        for (long i = 0; i < length; i++) {
            if (RawMemory.getByte(address + i) != 0) {
                return i;
            }
        }
        return -1;
    }
}
