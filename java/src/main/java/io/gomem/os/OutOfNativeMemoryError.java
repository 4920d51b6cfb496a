package io.gomem.os;

/**
 * gomem could not get native memory: the kernel refused a system call of the OS layer with
 * ENOMEM (an address-space limit such as {@code ulimit -v}, the overcommit policy, the map-count
 * limit), the way the JVM's own {@link OutOfMemoryError}s and Netty's
 * {@code OutOfDirectMemoryError} report running out. The message names the gomem call, the system
 * call, the address range and the errno, as {@link OsMemoryException}'s does, e.g.
 * {@code sysMap: mmap [0x7f0000000000, +4 TiB) failed: ENOMEM (Cannot allocate memory)}.
 *
 * <p>Nothing changed: the OS layer's region tracker is as it was (the failed call had no effect),
 * and a heap that was growing stays usable for what fits. Every other failed system call is an
 * {@link OsMemoryException}.
 */
public class OutOfNativeMemoryError extends OutOfMemoryError {
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
        return OsMemoryException.errnoName(errno);
    }
}
