package io.gomem.os;

import io.gomem.bindings.linux.LinuxSys;

/**
 * A system call of the OS layer failed. The message names the gomem call ({@code sysMap}), the
 * system call ({@code mmap}), the address range, the errno's name and the kernel's text for it,
 * e.g. {@code sysFree: munmap [0x7f0000000001, +8 KiB) failed: EINVAL (Invalid argument)}.
 * The region tracker is unchanged when this is thrown.
 *
 * <p>Running out of memory is not this: a call that gets, changes or gives back memory and is
 * refused with ENOMEM throws {@link OutOfNativeMemoryError}, an {@link OutOfMemoryError}.
 */
public final class OsMemoryException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final String call;
    private final String syscall;
    private final long address;
    private final long length;
    private final int errno;

    OsMemoryException(String call, String syscall, long address, long length, int errno) {
        super(message(call, syscall, address, length, errno));
        this.call = call;
        this.syscall = syscall;
        this.address = address;
        this.length = length;
        this.errno = errno;
    }

    /** The OS-layer call, e.g. {@code sysMap}. */
    public String call() {
        return call;
    }

    /** The system call that failed, e.g. {@code mmap}. */
    public String syscall() {
        return syscall;
    }

    public long address() {
        return address;
    }

    public long length() {
        return length;
    }

    public int errno() {
        return errno;
    }

    /** The symbolic name of {@link #errno()}, e.g. {@code ENOMEM}. */
    public String errnoName() {
        return errnoName(errno);
    }

    /**
     * True if errno is ENOMEM. Only mincore ({@link KernelView}'s residency query, for which ENOMEM
     * means part of the range is not mapped) gives an OsMemoryException with it: ENOMEM from any
     * call that gets, changes or gives back memory is an {@link OutOfNativeMemoryError}.
     */
    public boolean isOutOfMemory() {
        return errno == LinuxSys.ENOMEM();
    }

    /** {@code call: syscall [range) failed: ENAME (kernel's text)}. */
    static String message(String call, String syscall, long address, long length, int errno) {
        return call + ": " + syscall + " " + Ranges.format(address, length) + " failed: "
                + errnoName(errno) + " (" + Syscalls.strerror(errno) + ")";
    }

    static String errnoName(int errno) {
        if (errno == LinuxSys.EPERM()) return "EPERM";
        if (errno == LinuxSys.EINTR()) return "EINTR";
        if (errno == LinuxSys.EAGAIN()) return "EAGAIN";
        if (errno == LinuxSys.ENOMEM()) return "ENOMEM";
        if (errno == LinuxSys.EACCES()) return "EACCES";
        if (errno == LinuxSys.EFAULT()) return "EFAULT";
        if (errno == LinuxSys.EBUSY()) return "EBUSY";
        if (errno == LinuxSys.EEXIST()) return "EEXIST";
        if (errno == LinuxSys.EINVAL()) return "EINVAL";
        if (errno == LinuxSys.ENOSYS()) return "ENOSYS";
        if (errno == LinuxSys.EOVERFLOW()) return "EOVERFLOW";
        return "errno " + errno;
    }
}
