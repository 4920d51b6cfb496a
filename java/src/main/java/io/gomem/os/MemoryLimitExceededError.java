package io.gomem.os;

/**
 * An allocation would take the memory gomem holds Ready past its hard memory limit, even after
 * every free page was returned to the OS: an {@link OutOfNativeMemoryError}, so an
 * {@link OutOfMemoryError}. Nothing was allocated; the heap stays usable for what fits. No system
 * call failed: {@link #syscall()} is null, {@link #errno()} 0 and {@link #length()} the Ready
 * bytes the allocation needed. (Thrown by the heap; it lives here, with the other errors about
 * memory from the OS.)
 */
public final class MemoryLimitExceededError extends OutOfNativeMemoryError {
    private static final long serialVersionUID = 1L;

    private final long limit;
    private final long ready;
    private final long requested;

    public MemoryLimitExceededError(long limit, long ready, long requested) {
        super("hard memory limit: an allocation needing " + requested + " B more Ready memory would take the heap's "
                + ready + " B Ready past its hard limit of " + limit + " B (gomem.hardMemoryLimit), even after"
                + " returning every free page to the OS", "allocate", requested);
        this.limit = limit;
        this.ready = ready;
        this.requested = requested;
    }

    /** The hard limit, in bytes of Ready heap memory. */
    public long limit() {
        return limit;
    }

    /** Ready heap bytes when the allocation was refused. */
    public long ready() {
        return ready;
    }

    /** The Ready bytes the allocation needed. */
    public long requested() {
        return requested;
    }
}
