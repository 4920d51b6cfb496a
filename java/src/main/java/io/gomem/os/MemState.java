package io.gomem.os;

/**
 * Go's four states of a region of address space (see {@code mem.go} in the Go runtime).
 *
 * <pre>
 *            sysReserve             sysMap               sysUsed
 *   NONE ─────────────▶ RESERVED ─────────▶ PREPARED ──────────▶ READY
 *     ▲                  ▲   ▲                │  ▲    sysUnused    │
 *     │                  │   └──── sysFault ──┘  └─────────────────┤
 *     │                  └───────────── sysFault ──────────────────┤
 *     └──────────── sysFree (from any state) ──────────────────────┘
 *     NONE ──────────────────────── sysAlloc ───────────────────▶ READY
 * </pre>
 */
public enum MemState {
    /** Not ours: unmapped. */
    NONE("None"),
    /** Address space held; any access faults; no memory charged (PROT_NONE, MAP_NORESERVE). */
    RESERVED("Reserved"),
    /** Mapped read-write but not promised to be backed; cheap to make Ready. Must not be handed out. */
    PREPARED("Prepared"),
    /** Safe to use. */
    READY("Ready");

    private final String label;

    MemState(String label) {
        this.label = label;
    }

    @Override
    public String toString() {
        return label;
    }
}
