package io.gomem.os;

/** Formatting of address ranges and byte counts for messages and logs. No state. */
final class Ranges {
    private Ranges() {
    }

    /** {@code [0x7f0000000000, 0x7f0004000000) 64 MiB}. */
    static String format(long address, long length) {
        return "[0x" + Long.toHexString(address) + ", 0x" + Long.toHexString(address + length) + ") "
                + bytes(length);
    }

    /** Human-readable bytes: exact when small, binary units otherwise ({@code 64 MiB}, {@code 12 KiB}). */
    static String bytes(long n) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
        int u = 0;
        double v = n;
        while (Math.abs(v) >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return u == 0 ? n + " B" : (v == Math.rint(v) ? String.valueOf((long) v) : String.format("%.1f", v))
                + " " + units[u];
    }
}
