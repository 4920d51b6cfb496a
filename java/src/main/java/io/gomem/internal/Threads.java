package io.gomem.internal;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

/**
 * What gomem asks of threads that newer JDKs answer and JDK 17 does not: whether a thread is
 * virtual (JDK 21+; none is before), and the exception of a confined object used from another
 * thread ({@code WrongThreadException}, JDK 19+; {@link IllegalStateException} before). Found
 * once by lookup, so the jar's JDK 17 part runs the same code on every JDK.
 *
 * <p>Owns no mutable state: two {@code static final} handles.
 */
public final class Threads {
    private Threads() {
    }

    private static final MethodHandle IS_VIRTUAL = find(() -> MethodHandles.publicLookup()
            .findVirtual(Thread.class, "isVirtual", MethodType.methodType(boolean.class)));
    private static final MethodHandle WRONG_THREAD = find(() -> MethodHandles.publicLookup()
            .findConstructor(Class.forName("java.lang.WrongThreadException"), MethodType.methodType(void.class, String.class))
            .asType(MethodType.methodType(RuntimeException.class, String.class)));

    private interface Lookup {
        MethodHandle find() throws ReflectiveOperationException;
    }

    private static MethodHandle find(Lookup l) {
        try {
            return l.find();
        } catch (ReflectiveOperationException e) {
            return null; // an older JDK
        }
    }

    /** True if {@code t} is a virtual thread (always false before JDK 21). */
    public static boolean isVirtual(Thread t) {
        if (IS_VIRTUAL == null) {
            return false;
        }
        try {
            return (boolean) IS_VIRTUAL.invokeExact(t);
        } catch (Throwable e) {
            throw new AssertionError(e);
        }
    }

    /** True if this JDK has virtual threads (21+). */
    public static boolean virtualThreadsExist() {
        return IS_VIRTUAL != null;
    }

    /** {@code WrongThreadException(message)} on JDK 19+, else {@code IllegalStateException(message)}. */
    public static RuntimeException wrongThread(String message) {
        if (WRONG_THREAD == null) {
            return new IllegalStateException(message);
        }
        try {
            return (RuntimeException) WRONG_THREAD.invokeExact(message);
        } catch (Throwable e) {
            throw new AssertionError(e);
        }
    }
}
