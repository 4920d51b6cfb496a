package io.gomem;

import io.gomem.internal.Threads;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

/**
 * Threads for tests that run on JDK 17 as well as 25: {@link #virtual} starts a virtual thread
 * where the JDK has them (21+) and a platform thread before, so a test written for both kinds
 * still runs, with platform threads only, on JDK 17.
 */
public final class TestThreads {
    private TestThreads() {
    }

    /** Starts {@code r} on a thread of some kind. */
    public interface Starter {
        Thread start(Runnable r);
    }

    private static final MethodHandle START_VIRTUAL = startVirtual();

    private static MethodHandle startVirtual() {
        if (!Threads.virtualThreadsExist()) {
            return null;
        }
        try {
            return MethodHandles.publicLookup().findStatic(Thread.class, "startVirtualThread",
                    MethodType.methodType(Thread.class, Runnable.class));
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    /** True on JDK 21+, where {@link #virtual} starts virtual threads. */
    public static boolean virtualThreadsExist() {
        return START_VIRTUAL != null;
    }

    /** A started platform thread. */
    public static Thread platform(Runnable r) {
        Thread t = new Thread(r);
        t.start();
        return t;
    }

    /** A started platform daemon thread named {@code name}. */
    public static Thread daemon(String name, Runnable r) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        t.start();
        return t;
    }

    /** A started virtual thread (JDK 21+), or a platform thread on older JDKs. */
    public static Thread virtual(Runnable r) {
        if (START_VIRTUAL == null) {
            return platform(r);
        }
        try {
            return (Thread) START_VIRTUAL.invokeExact(r);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** A started virtual thread named {@code name} (JDK 21+), or a platform daemon thread so named. */
    public static Thread virtual(String name, Runnable r) {
        if (START_VIRTUAL == null) {
            return daemon(name, r);
        }
        Thread t = virtual(r);
        t.setName(name);
        return t;
    }

    /** Joins {@code t} for at most {@code millis}; true if it ended. */
    public static boolean join(Thread t, long millis) throws InterruptedException {
        t.join(Math.max(1, millis));
        return !t.isAlive();
    }

    /** The exception a confined object throws on use from another thread: WrongThreadException from JDK 19, else IllegalStateException. */
    public static Class<? extends RuntimeException> wrongThreadException() {
        return Threads.wrongThread("probe").getClass();
    }
}
