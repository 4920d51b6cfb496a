package io.gomem.bench;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * A bounded lock-free single-producer single-consumer queue of nonzero {@code long}s (addresses),
 * allocation-free, for handing blocks from the thread that allocates them to the thread that frees
 * them. One thread may call {@link #offer}, one (possibly another) {@link #poll}.
 *
 * <p>The usual design: a power-of-two array indexed by two ever-growing counters; the producer
 * writes the slot then publishes its {@code tail} with a release store, the consumer reads
 * {@code tail} with an acquire load before the slot, and symmetrically for {@code head}. Each
 * side keeps a cached copy of the other side's counter and rereads it only when the cache says
 * full (empty), so in steady state the two threads touch each other's cache line about once per
 * lap. The counters sit on separate cache lines, padded through the class hierarchy (HotSpot lays
 * a superclass's fields out before a subclass's).
 */
final class SpscRing extends SpscRingFields {

    SpscRing(int capacity) {
        super(capacity);
    }

    /** Adds {@code value} (nonzero) unless the ring is full; returns whether it was added. Producer only. */
    boolean offer(long value) {
        long t = tail;
        if (t - headCache >= buffer.length) {
            headCache = (long) HEAD.getAcquire(this);
            if (t - headCache >= buffer.length) {
                return false;
            }
        }
        buffer[(int) t & mask] = value;
        TAIL.setRelease(this, t + 1);
        return true;
    }

    /** Removes and returns the oldest value, or 0 if the ring is empty. Consumer only. */
    long poll() {
        long h = head;
        if (h >= tailCache) {
            tailCache = (long) TAIL.getAcquire(this);
            if (h >= tailCache) {
                return 0;
            }
        }
        long value = buffer[(int) h & mask];
        HEAD.setRelease(this, h + 1);
        return value;
    }

    /** Removes everything; only when neither side is running. */
    long drain(java.util.function.LongConsumer each) {
        long n = 0;
        for (long v; (v = poll()) != 0; n++) {
            each.accept(v);
        }
        return n;
    }

    private static final VarHandle HEAD;
    private static final VarHandle TAIL;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            HEAD = l.findVarHandle(SpscRingConsumer.class, "head", long.class);
            TAIL = l.findVarHandle(SpscRingProducer.class, "tail", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }
}

/** Read-only after construction, shared by both sides, then padding. */
abstract class SpscRingPad0 {
    final long[] buffer;
    final int mask;
    long p00, p01, p02, p03, p04, p05, p06, p07;

    SpscRingPad0(int capacity) {
        if (capacity < 2 || Integer.bitCount(capacity) != 1) {
            throw new IllegalArgumentException("capacity must be a power of two: " + capacity);
        }
        buffer = new long[capacity];
        mask = capacity - 1;
    }
}

/** Written by the producer: its counter and its cache of the consumer's. */
abstract class SpscRingProducer extends SpscRingPad0 {
    long tail;
    long headCache;

    SpscRingProducer(int capacity) {
        super(capacity);
    }
}

abstract class SpscRingPad1 extends SpscRingProducer {
    long p10, p11, p12, p13, p14, p15, p16, p17;

    SpscRingPad1(int capacity) {
        super(capacity);
    }
}

/** Written by the consumer: its counter and its cache of the producer's. */
abstract class SpscRingConsumer extends SpscRingPad1 {
    long head;
    long tailCache;

    SpscRingConsumer(int capacity) {
        super(capacity);
    }
}

abstract class SpscRingFields extends SpscRingConsumer {
    long p20, p21, p22, p23, p24, p25, p26, p27;

    SpscRingFields(int capacity) {
        super(capacity);
    }
}
