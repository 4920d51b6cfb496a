package io.gomem.os;

import io.gomem.internal.Options;

import java.util.Locale;

/**
 * The OS layer's one seam to the kernel: the five memory system calls behind a {@link Backend},
 * either {@code PanamaSyscalls} (downcalls through the jextract bindings; in the jar's JDK 25
 * part) or {@link JniSyscalls} (gomem's own C, {@code native/jni}, any JDK from 17). Which one is
 * {@code gomem.backend} ({@code auto}: Panama where the jar's Panama part runs, JNI elsewhere),
 * chosen once per JVM. A failure carries the errno the kernel set, the same through
 * both, and becomes an {@link OutOfNativeMemoryError} if that is ENOMEM, else an
 * {@link OsMemoryException} (mincore, a query whose ENOMEM means "not mapped", always the
 * latter). Nothing here knows about region states; {@link OsMemory} checks those before it calls
 * in.
 *
 * <p>Owns no mutable state: the backend and every constant are {@code static final}, so a call
 * site sees one implementation and the JIT inlines through it.
 */
final class Syscalls {
    private Syscalls() {
    }

    /**
     * What a backend does: the calls with the kernel's result and errno, as plain values (no
     * exceptions: {@link Syscalls} makes those, once for both).
     */
    interface Backend {
        /** {@code panama} or {@code jni}. */
        String name();

        /** mmap(addr, len, prot, flags, -1, 0): the address, or -errno. */
        long mmap(long addr, long len, int prot, int flags);

        /** 0 or errno. */
        int munmap(long addr, long len);

        /** 0 or errno. */
        int madvise(long addr, long len, int advice);

        /** 0 or errno. */
        int mprotect(long addr, long len, int prot);

        /** mincore into {@code vec} (one byte per kernel page): 0 or errno. */
        int mincore(long addr, long len, byte[] vec);

        String strerror(int errno);

        /** The value of a constant named as in {@code bindings/jextract.args}; IllegalArgumentException if unknown. */
        long constant(String name);

        /** sysconf(name). */
        long sysconf(int name);
    }

    /** The backend of this JVM (see the class comment). */
    static final Backend BACKEND = choose(Options.BACKEND.value());

    static final int PROT_NONE = (int) BACKEND.constant("PROT_NONE");
    static final int PROT_READ = (int) BACKEND.constant("PROT_READ");
    static final int PROT_WRITE = (int) BACKEND.constant("PROT_WRITE");
    static final int MAP_PRIVATE = (int) BACKEND.constant("MAP_PRIVATE");
    static final int MAP_ANONYMOUS = (int) BACKEND.constant("MAP_ANONYMOUS");
    static final int MAP_FIXED = (int) BACKEND.constant("MAP_FIXED");
    static final int MAP_NORESERVE = (int) BACKEND.constant("MAP_NORESERVE");
    static final int MADV_DONTNEED = (int) BACKEND.constant("MADV_DONTNEED");
    static final int MADV_FREE = (int) BACKEND.constant("MADV_FREE");
    static final int MADV_HUGEPAGE = (int) BACKEND.constant("MADV_HUGEPAGE");
    static final int MADV_NOHUGEPAGE = (int) BACKEND.constant("MADV_NOHUGEPAGE");
    static final int MADV_COLLAPSE = (int) BACKEND.constant("MADV_COLLAPSE");
    static final int EINVAL = (int) BACKEND.constant("EINVAL");
    static final int ENOMEM = (int) BACKEND.constant("ENOMEM");
    static final int EAGAIN = (int) BACKEND.constant("EAGAIN");

    /** The kernel's page size ({@code sysconf(_SC_PAGESIZE)}), the unit of every OS call. */
    static final long OS_PAGE_SIZE = BACKEND.sysconf((int) BACKEND.constant("_SC_PAGESIZE"));

    /**
     * The first Java release whose part of the jar has the Panama backend: 25. {@code java.lang.foreign}
     * is final from 22 (JEP 454), but jextract's JDK 25 line writes bindings that need 23+, and
     * JDK 22 to 24 are past their support; those run the JNI backend, as 17 and 21 do.
     */
    static final int PANAMA_FINAL = 25;

    /**
     * The backend {@code gomem.backend} asks for: {@code auto} (or empty) takes Panama from
     * {@link #PANAMA_FINAL} on and JNI below; {@code panama} on an older JDK, an unknown value, or a
     * platform with no JNI library in the jar is refused with an error naming the value and the
     * rule.
     */
    static Backend choose(String value) {
        String v = value.trim().toLowerCase(Locale.ROOT);
        int feature = Runtime.version().feature();
        switch (v) {
            case "", "auto":
                return feature >= PANAMA_FINAL ? panama(v) : new JniSyscalls();
            case "panama":
                if (feature < PANAMA_FINAL) {
                    throw Options.BACKEND.refused(value, "the Panama backend is in the jar's part for JDK "
                            + PANAMA_FINAL + " and later; this is JDK " + feature + ": use 'jni' or 'auto'");
                }
                return panama(v);
            case "jni":
                return new JniSyscalls();
            default:
                throw Options.BACKEND.refused(value, "expected 'auto', 'panama' or 'jni'");
        }
    }

    /**
     * The Panama backend, by name: it lives in the jar's JDK 25 part only, so the base part must
     * not link to it.
     */
    private static Backend panama(String asked) {
        try {
            return (Backend) Class.forName("io.gomem.os.PanamaSyscalls").getDeclaredConstructor().newInstance();
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("gomem.backend=" + (asked.isEmpty() ? "auto" : asked)
                    + ": the Panama backend (io.gomem.os.PanamaSyscalls) is not in this jar's JDK "
                    + Runtime.version().feature() + " part: use gomem.backend=jni", e);
        }
    }

    /** mmap(addr, len, prot, flags, -1, 0); returns the address or throws with errno. */
    static long mmap(String call, long addr, long len, int prot, int flags) {
        long r = BACKEND.mmap(addr, len, prot, flags);
        if (r < 0 && r >= -4095) {
            throw failure(call, "mmap", addr, len, (int) -r);
        }
        return r;
    }

    static void munmap(String call, long addr, long len) {
        check(call, "munmap", addr, len, BACKEND.munmap(addr, len));
    }

    static void madvise(String call, long addr, long len, int advice) {
        check(call, "madvise", addr, len, BACKEND.madvise(addr, len, advice));
    }

    /** madvise returning the errno instead of throwing (0 on success), for advice that may be unsupported. */
    static int madviseErrno(long addr, long len, int advice) {
        return BACKEND.madvise(addr, len, advice);
    }

    static void mprotect(String call, long addr, long len, int prot) {
        check(call, "mprotect", addr, len, BACKEND.mprotect(addr, len, prot));
    }

    /** mincore over [addr, addr+len): one byte per OS page, bit 0 set if the page is resident. */
    static byte[] mincore(long addr, long len) {
        byte[] vec = new byte[(int) ((len + OS_PAGE_SIZE - 1) / OS_PAGE_SIZE)];
        int errno = BACKEND.mincore(addr, len, vec);
        if (errno != 0) {
            throw new OsMemoryException("mincore", "mincore", addr, len, errno);
        }
        return vec;
    }

    /** strerror(errno) as a Java string. */
    static String strerror(int errno) {
        return BACKEND.strerror(errno);
    }

    private static void check(String call, String syscall, long addr, long len, int errno) {
        if (errno != 0) {
            throw failure(call, syscall, addr, len, errno);
        }
    }

    /**
     * The failure of a system call that gets, changes or gives back memory: ENOMEM (the kernel is
     * out of memory, address space or mappings) is thrown from here as an
     * {@link OutOfNativeMemoryError}; any other errno is returned as an OsMemoryException for the
     * caller to throw ({@code throw failure(...)}).
     */
    static OsMemoryException failure(String call, String syscall, long addr, long len, int errno) {
        if (errno == ENOMEM) {
            throw new OutOfNativeMemoryError(call, syscall, addr, len, errno);
        }
        return new OsMemoryException(call, syscall, addr, len, errno);
    }
}
