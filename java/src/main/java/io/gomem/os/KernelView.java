package io.gomem.os;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What the kernel says about this process's memory, independent of gomem's own counters: the
 * mappings of {@code /proc/self/smaps} (with their permissions and Rss) and {@code mincore}'s
 * per-page residency. Tests, the demo and the container checks use it to ask the kernel rather
 * than trust the tracker. Owns no state; every call reads the kernel afresh.
 */
public final class KernelView {
    private KernelView() {
    }

    /** One mapping (VMA) of /proc/self/smaps: [start, end), permissions like {@code rw-p}, Rss in bytes. */
    public record Mapping(long start, long end, String perms, long rssBytes) {
        public boolean covers(long addr, long len) {
            return start <= addr && addr + len <= end;
        }
    }

    /** The mappings of /proc/self/smaps that intersect [addr, addr+len), in address order. */
    public static List<Mapping> mappings(long addr, long len) {
        List<Mapping> out = new ArrayList<>();
        long end = addr + len;
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of("/proc/self/smaps"));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read /proc/self/smaps", e);
        }
        long s = 0, e = 0;
        String perms = null;
        boolean in = false;
        for (String line : lines) {
            int dash = line.indexOf('-');
            int space = line.indexOf(' ');
            if (dash > 0 && space > dash && isHex(line, 0, dash)) {
                s = Long.parseUnsignedLong(line.substring(0, dash), 16);
                e = Long.parseUnsignedLong(line.substring(dash + 1, space), 16);
                perms = line.substring(space + 1, space + 5);
                in = s < end && addr < e;
            } else if (in && line.startsWith("Rss:")) {
                String kb = line.substring(4).trim();
                long rss = Long.parseLong(kb.substring(0, kb.indexOf(' '))) * 1024;
                out.add(new Mapping(s, e, perms, rss));
                in = false;
            }
        }
        return out;
    }

    /**
     * Rss in bytes of [addr, addr+len) from /proc/self/smaps. Exact only when the range is made of
     * whole mappings; throws IllegalStateException when a mapping with a nonzero Rss sticks out of
     * the range (then smaps cannot say how much of it is inside: use {@link #residentBytes}).
     */
    public static long smapsRss(long addr, long len) {
        long sum = 0;
        for (Mapping m : mappings(addr, len)) {
            if (m.rssBytes != 0 && (m.start < addr || m.end > addr + len)) {
                throw new IllegalStateException("mapping " + Ranges.format(m.start, m.end - m.start)
                        + " with Rss " + m.rssBytes + " extends past " + Ranges.format(addr, len));
            }
            sum += m.rssBytes;
        }
        return sum;
    }

    /** Bytes of [addr, addr+len) resident in memory according to {@code mincore}. */
    public static long residentBytes(long addr, long len) {
        byte[] vec = Syscalls.mincore(addr, len);
        long pages = 0;
        for (byte b : vec) {
            pages += b & 1;
        }
        return pages * OsMemory.PAGE_SIZE;
    }

    /** The permissions ({@code rw-p}, {@code ---p}) of the mapping holding {@code addr}, or null if unmapped. */
    public static String permsAt(long addr) {
        for (Mapping m : mappings(addr, OsMemory.PAGE_SIZE)) {
            if (m.start <= addr && addr < m.end) {
                return m.perms;
            }
        }
        return null;
    }

    /**
     * The memory limit of the cgroup this process runs in, in bytes, or -1 if none: v2's
     * {@code memory.max}, else v1's {@code memory.limit_in_bytes} (a v1 value near 2^63 means none).
     */
    public static long cgroupMemoryLimit() {
        for (String p : new String[] {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
            try {
                String v = Files.readString(Path.of(p)).trim();
                if (v.equals("max")) {
                    return -1;
                }
                long n = Long.parseLong(v);
                return n >= (1L << 60) ? -1 : n;
            } catch (IOException | NumberFormatException ignored) {
                // try the next layout
            }
        }
        return -1;
    }

    private static boolean isHex(String s, int from, int to) {
        for (int i = from; i < to; i++) {
            char c = s.charAt(i);
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
                return false;
            }
        }
        return to > from;
    }
}
