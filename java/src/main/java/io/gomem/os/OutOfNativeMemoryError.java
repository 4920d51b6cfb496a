package io.gomem.os;

/**
 * gomem could not get native memory: the kernel refused a system call of the OS layer with
 * ENOMEM (an address-space limit such as {@code ulimit -v}, the overcommit policy, the map-count
 * limit), or, as the subclass {@link MemoryLimitExceededError}, the heap's hard memory limit
 * refused an allocation. Reported the way the JVM's own {@link OutOfMemoryError}s and Netty's
 * {@code OutOfDirectMemoryError} report running out. The message names the gomem call, the system
 * call, the address range and the errno, as {@link OsMemoryException}'s does, e.g.
 * {@code sysMap: mmap [0x7f0000000000, +4 TiB) failed: ENOMEM (Cannot allocate memory)}.
 *
 * <p>Nothing changed: the OS layer's region tracker is as it was (the failed call had no effect),
 * and a heap that was growing stays usable for what fits. Every other failed system call is an
 * {@link OsMemoryException}.
 */
public sealed class OutOfNativeMemoryError extends OutOfMemoryError permits MemoryLimitExceededError {
    private static final long serialVersionUID = 1L;

    private final String call;
    private final String syscall;
    private final long address;
    private final long length;
    private final int errno;

    /** The kernel refused {@code syscall} of {@code call} with {@code errno} (ENOMEM). */
    OutOfNativeMemoryError(String call, String syscall, long address, long length, int errno) {
        super(OsMemoryException.message(call, syscall, address, length, errno));
        this.call = call;
        this.syscall = syscall;
        this.address = address;
        this.length = length;
        this.errno = errno;
    }

    /** gomem refused {@code call} on its own, no system call failed: {@link MemoryLimitExceededError}. */
    OutOfNativeMemoryError(String message, String call, long length) {
        super(message);
        this.call = call;
        this.syscall = null;
        this.address = 0;
        this.length = length;
        this.errno = 0;
    }

    /** The OS-layer call, e.g. {@code sysMap} ({@code allocate} for a {@link MemoryLimitExceededError}). */
    public String call() {
        return call;
    }

    /** The system call that failed, e.g. {@code mmap}; null if none did ({@link MemoryLimitExceededError}). */
    public String syscall() {
        return syscall;
    }

    /** The start of the range the call was given (0 for a {@link MemoryLimitExceededError}). */
    public long address() {
        return address;
    }

    /** The length of the range the call was given; the bytes asked for. */
    public long length() {
        return length;
    }

    /** The kernel's errno, ENOMEM; 0 if no system call failed ({@link MemoryLimitExceededError}). */
    public int errno() {
        return errno;
    }

    /** The symbolic name of {@link #errno()}, {@code ENOMEM}; null if no system call failed. */
    public String errnoName() {
        return errno == 0 ? null : OsMemoryException.errnoName(errno);
    }
}
