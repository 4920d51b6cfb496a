package io.gomem;

/** Argument checks of the public API, shared by its methods. No state. */
final class HeapCoreChecks {
    private HeapCoreChecks() {
    }

    static void check(long size, long alignment) {
        if (size < 0) {
            throw new IllegalArgumentException("size " + size + " is negative: sizes are 0 to 2^46 bytes");
        }
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0) {
            throw new IllegalArgumentException("alignment " + alignment + " is not a power of two");
        }
    }
}
