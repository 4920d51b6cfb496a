package io.gomem.os;

/** What a region's bytes are for, so that accounting can say where memory went (Go's sysStat). */
public enum Purpose {
    /** Heap arenas: the memory handed out to users. */
    HEAP,
    /** The allocator's own metadata (spans tables, bitmaps) when kept off-heap. */
    METADATA,
    /** Anything else: regions a user drives directly through {@link OsMemory}. */
    OTHER
}
