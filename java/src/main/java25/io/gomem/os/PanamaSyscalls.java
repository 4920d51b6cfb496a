package io.gomem.os;

import io.gomem.bindings.linux.LinuxSys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.lang.reflect.Method;

/**
 * The Panama backend ({@code gomem.backend=panama}, the default from JDK 25): downcalls through
 * the jextract bindings ({@link LinuxSys}, never edited by hand), each re-linked with
 * {@code Linker.Option.captureCallState("errno")} so that a failure carries the errno the kernel
 * set, captured by the JDK right after the call.
 *
 * <p>Owns no mutable state: every handle is a {@code static final} constant. Errno is captured
 * into a segment allocated per call (system calls are microseconds; the allocation is noise).
 * Created by name ({@link Syscalls#choose}): the base part of the multi-release jar (JDK 17)
 * has no such class.
 */
final class PanamaSyscalls implements Syscalls.Backend {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
    private static final long MAP_FAILED = LinuxSys.MAP_FAILED().address();

    private static final MethodHandle MMAP = link(LinuxSys.mmap$address(), LinuxSys.mmap$descriptor());
    private static final MethodHandle MUNMAP = link(LinuxSys.munmap$address(), LinuxSys.munmap$descriptor());
    private static final MethodHandle MADVISE = link(LinuxSys.madvise$address(), LinuxSys.madvise$descriptor());
    private static final MethodHandle MPROTECT = link(LinuxSys.mprotect$address(), LinuxSys.mprotect$descriptor());
    private static final MethodHandle MINCORE = link(LinuxSys.mincore$address(), LinuxSys.mincore$descriptor());

    @SuppressWarnings("restricted") // gomem is a native-access module: see the README
    private static MethodHandle link(MemorySegment address, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(address, descriptor, CAPTURE_ERRNO);
    }

    PanamaSyscalls() {
    }

    @Override
    public String name() {
        return "panama";
    }

    @Override
    public long mmap(long addr, long len, int prot, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            MemorySegment r = (MemorySegment) MMAP.invokeExact(state, MemorySegment.ofAddress(addr), len, prot, flags, -1, 0L);
            return r.address() == MAP_FAILED ? -(int) ERRNO.get(state, 0L) : r.address();
        } catch (Throwable t) {
            throw new AssertionError("mmap downcall failed", t);
        }
    }

    @Override
    public int munmap(long addr, long len) {
        return invoke(MUNMAP, addr, len, 0, false);
    }

    @Override
    public int madvise(long addr, long len, int advice) {
        return invoke(MADVISE, addr, len, advice, true);
    }

    @Override
    public int mprotect(long addr, long len, int prot) {
        return invoke(MPROTECT, addr, len, prot, true);
    }

    @Override
    public int mincore(long addr, long len, byte[] vec) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            MemorySegment out = arena.allocate(vec.length);
            int r = (int) MINCORE.invokeExact(state, MemorySegment.ofAddress(addr), len, out);
            if (r != 0) {
                return (int) ERRNO.get(state, 0L);
            }
            MemorySegment.copy(out, ValueLayout.JAVA_BYTE, 0, vec, 0, vec.length);
            return 0;
        } catch (Throwable t) {
            throw new AssertionError("mincore downcall failed", t);
        }
    }

    @Override
    @SuppressWarnings("restricted") // gomem is a native-access module: see the README
    public String strerror(int errno) {
        return LinuxSys.strerror(errno).reinterpret(256).getString(0);
    }

    @Override
    public long constant(String name) {
        try {
            Method m = LinuxSys.class.getMethod(name);
            Object v = m.invoke(null);
            return v instanceof MemorySegment s ? s.address() : ((Number) v).longValue();
        } catch (NoSuchMethodException e) {
            throw new IllegalArgumentException("no constant " + name + " in the jextract bindings", e);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("constant " + name + " of the jextract bindings", e);
        }
    }

    @Override
    public long sysconf(int name) {
        return LinuxSys.sysconf(name);
    }

    /** Invokes an int-returning (addr, len[, int]) call; returns 0 or errno. */
    private static int invoke(MethodHandle h, long addr, long len, int arg, boolean hasArg) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            int r = hasArg
                    ? (int) h.invokeExact(state, MemorySegment.ofAddress(addr), len, arg)
                    : (int) h.invokeExact(state, MemorySegment.ofAddress(addr), len);
            return r == 0 ? 0 : (int) ERRNO.get(state, 0L);
        } catch (Throwable t) {
            throw new AssertionError("downcall failed", t);
        }
    }
}
