package io.gomem.os;

import io.gomem.bindings.linux.LinuxSys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The hand-written layer over the jextract bindings ({@link LinuxSys}, never edited by hand):
 * each call is re-linked with {@code Linker.Option.captureCallState("errno")} so that a failure
 * carries the errno the kernel set, and becomes an {@link OutOfNativeMemoryError} if that is
 * ENOMEM, else an {@link OsMemoryException} (mincore, a query whose ENOMEM means "not mapped",
 * always the latter). Nothing here knows
 * about region states; {@link OsMemory} checks those before it calls in.
 *
 * <p>Owns no mutable state: every handle is a {@code static final} constant. Errno is captured
 * into a segment allocated per call (system calls are microseconds; the allocation is noise).
 */
final class Syscalls {
    private Syscalls() {
    }

    static final int PROT_NONE = LinuxSys.PROT_NONE();
    static final int PROT_READ = LinuxSys.PROT_READ();
    static final int PROT_WRITE = LinuxSys.PROT_WRITE();
    static final int MAP_PRIVATE = LinuxSys.MAP_PRIVATE();
    static final int MAP_ANONYMOUS = LinuxSys.MAP_ANONYMOUS();
    static final int MAP_FIXED = LinuxSys.MAP_FIXED();
    static final int MAP_NORESERVE = LinuxSys.MAP_NORESERVE();
    static final long MAP_FAILED = LinuxSys.MAP_FAILED().address();
    static final int MADV_DONTNEED = LinuxSys.MADV_DONTNEED();
    static final int MADV_FREE = LinuxSys.MADV_FREE();
    static final int MADV_HUGEPAGE = LinuxSys.MADV_HUGEPAGE();
    static final int MADV_NOHUGEPAGE = LinuxSys.MADV_NOHUGEPAGE();
    static final int MADV_COLLAPSE = LinuxSys.MADV_COLLAPSE();
    static final int EINVAL = LinuxSys.EINVAL();
    static final int ENOMEM = LinuxSys.ENOMEM();
    static final int EAGAIN = LinuxSys.EAGAIN();

    /** The kernel's page size ({@code sysconf(_SC_PAGESIZE)}), the unit of every OS call. */
    static final long OS_PAGE_SIZE = LinuxSys.sysconf(LinuxSys._SC_PAGESIZE());

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    private static final MethodHandle MMAP = link(LinuxSys.mmap$address(), LinuxSys.mmap$descriptor());
    private static final MethodHandle MUNMAP = link(LinuxSys.munmap$address(), LinuxSys.munmap$descriptor());
    private static final MethodHandle MADVISE = link(LinuxSys.madvise$address(), LinuxSys.madvise$descriptor());
    private static final MethodHandle MPROTECT = link(LinuxSys.mprotect$address(), LinuxSys.mprotect$descriptor());
    private static final MethodHandle MINCORE = link(LinuxSys.mincore$address(), LinuxSys.mincore$descriptor());

    @SuppressWarnings("restricted") // gomem is a native-access module: see the README
    private static MethodHandle link(MemorySegment address, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(address, descriptor, CAPTURE_ERRNO);
    }

    /** mmap(addr, len, prot, flags, -1, 0); returns the address or throws with errno. */
    static long mmap(String call, long addr, long len, int prot, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            MemorySegment r = (MemorySegment) MMAP.invokeExact(state, MemorySegment.ofAddress(addr), len, prot, flags, -1, 0L);
            if (r.address() == MAP_FAILED) {
                throw failure(call, "mmap", addr, len, (int) ERRNO.get(state, 0L));
            }
            return r.address();
        } catch (OsMemoryException | OutOfNativeMemoryError e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("mmap downcall failed", t);
        }
    }

    static void munmap(String call, long addr, long len) {
        check(call, "munmap", addr, len, invoke(MUNMAP, addr, len, 0, false));
    }

    static void madvise(String call, long addr, long len, int advice) {
        check(call, "madvise", addr, len, invoke(MADVISE, addr, len, advice, true));
    }

    /** madvise returning the errno instead of throwing (0 on success), for advice that may be unsupported. */
    static int madviseErrno(long addr, long len, int advice) {
        long r = invoke(MADVISE, addr, len, advice, true);
        return r < 0 ? (int) -r : 0;
    }

    static void mprotect(String call, long addr, long len, int prot) {
        check(call, "mprotect", addr, len, invoke(MPROTECT, addr, len, prot, true));
    }

    /** mincore over [addr, addr+len): one byte per OS page, bit 0 set if the page is resident. */
    static byte[] mincore(long addr, long len) {
        long pages = (len + OS_PAGE_SIZE - 1) / OS_PAGE_SIZE;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            MemorySegment vec = arena.allocate(pages);
            int r = (int) MINCORE.invokeExact(state, MemorySegment.ofAddress(addr), len, vec);
            if (r != 0) {
                throw new OsMemoryException("mincore", "mincore", addr, len, (int) ERRNO.get(state, 0L));
            }
            return vec.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        } catch (OsMemoryException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("mincore downcall failed", t);
        }
    }

    /** strerror(errno) as a Java string. */
    @SuppressWarnings("restricted") // gomem is a native-access module: see the README
    static String strerror(int errno) {
        return LinuxSys.strerror(errno).reinterpret(256).getString(0);
    }

    /** Invokes an int-returning (addr, len[, int]) call; returns 0 or -errno. */
    private static long invoke(MethodHandle h, long addr, long len, int arg, boolean hasArg) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            int r = hasArg
                    ? (int) h.invokeExact(state, MemorySegment.ofAddress(addr), len, arg)
                    : (int) h.invokeExact(state, MemorySegment.ofAddress(addr), len);
            return r == 0 ? 0 : -(int) ERRNO.get(state, 0L);
        } catch (Throwable t) {
            throw new AssertionError("downcall failed", t);
        }
    }

    private static void check(String call, String syscall, long addr, long len, long r) {
        if (r != 0) {
            throw failure(call, syscall, addr, len, (int) -r);
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
