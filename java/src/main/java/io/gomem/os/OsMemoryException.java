package io.gomem.os;

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
        return errno == Syscalls.ENOMEM;
    }

    /** {@code call: syscall [range) failed: ENAME (kernel's text)}. */
    static String message(String call, String syscall, long address, long length, int errno) {
        return call + ": " + syscall + " " + Ranges.format(address, length) + " failed: "
                + errnoName(errno) + " (" + Syscalls.strerror(errno) + ")";
    }

    /** The errno values named in messages (the backend's constants, as the C headers define them). */
    private static final String[] ERRNO_NAMES = {"EPERM", "EINTR", "EAGAIN", "ENOMEM", "EACCES", "EFAULT", "EBUSY",
            "EEXIST", "EINVAL", "ENOSYS", "EOVERFLOW"};

    static String errnoName(int errno) {
        for (String name : ERRNO_NAMES) {
            if (errno == Syscalls.BACKEND.constant(name)) {
                return name;
            }
        }
        return "errno " + errno;
    }
}
