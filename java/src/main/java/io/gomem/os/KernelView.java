package io.gomem.os;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * What the kernel says about this process's memory, independent of gomem's own counters: the
 * mappings of {@code /proc/self/maps} (where they lie, their permissions), and per page of a
 * range which pages are in memory, from {@code /proc/self/pagemap} and from {@code mincore}.
 * Tests, the demo and the container checks use it to ask the kernel rather than trust the
 * tracker. Owns no state; every call reads the kernel afresh.
 *
 * <p><b>Why residency is read per page.</b> The kernel merges a new anonymous mapping with
 * neighbours that have the same permissions and flags into one mapping (VMA), and
 * {@code /proc/self/smaps} gives one Rss per VMA: for a range that is only part of its VMA, that
 * Rss also counts the neighbours' pages, and nothing in smaps says how many of them lie inside the
 * range. pagemap and mincore answer for each page of exactly the range asked about, whatever the
 * VMA layout around it.
 */
public final class KernelView {
    private KernelView() {
    }

    private static final long PAGE = Syscalls.OS_PAGE_SIZE;
    private static final Path PAGEMAP = Path.of("/proc/self/pagemap");
    /** pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst). */
    private static final long PM_PRESENT = 1L << 63;
    private static final long PM_SWAP = 1L << 62;
    private static final long PM_FILE = 1L << 61;
    private static final long PM_EXCLUSIVE = 1L << 56;
    /** Entries read from pagemap per read call (8 bytes each). */
    private static final int CHUNK = 4096;

    /**
     * One mapping (VMA) of /proc/self/maps: [start, end) and permissions like {@code rw-p}. The
     * kernel may have merged gomem's range with neighbouring mappings of the same kind, so a
     * mapping can reach past the range that was asked about.
     */
    public record Mapping(long start, long end, String perms) {
        public boolean covers(long addr, long len) {
            return start <= addr && addr + len <= end;
        }

        /** This mapping cut to [addr, addr+len), or null if they do not overlap. */
        public Mapping clip(long addr, long len) {
            long s = Math.max(start, addr);
            long e = Math.min(end, addr + len);
            return s < e ? new Mapping(s, e, perms) : null;
        }

        @Override
        public String toString() {
            return "[0x" + Long.toHexString(start) + ", 0x" + Long.toHexString(end) + ") " + perms;
        }
    }

    /**
     * Per-page residency of a range from /proc/self/pagemap, in bytes: {@code present} pages are
     * mapped to memory (the shared zero page included); {@code own} pages are present, anonymous
     * and mapped only here, so they hold a frame of their own; {@code swapped} pages are out in
     * swap.
     */
    public record Pages(long present, long own, long swapped) {
    }

    /** The mappings of /proc/self/maps that intersect [addr, addr+len), whole and in address order. */
    public static List<Mapping> mappings(long addr, long len) {
        List<Mapping> out = new ArrayList<>();
        long end = addr + len;
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of("/proc/self/maps"));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read /proc/self/maps", e);
        }
        for (String line : lines) {
            int dash = line.indexOf('-');
            int space = line.indexOf(' ');
            if (dash <= 0 || space <= dash || !isHex(line, 0, dash) || line.length() < space + 5) {
                throw new IllegalStateException("unexpected line in /proc/self/maps: " + line);
            }
            long s = Long.parseUnsignedLong(line.substring(0, dash), 16);
            long e = Long.parseUnsignedLong(line.substring(dash + 1, space), 16);
            if (s < end && addr < e) {
                out.add(new Mapping(s, e, line.substring(space + 1, space + 5)));
            }
        }
        return out;
    }

    /**
     * The mappings intersecting [addr, addr+len) now that are exactly (bounds and permissions) one
     * of {@code before}, read before an unmap of that range: the mappings the unmap left. Once a
     * range is unmapped the kernel may hand it at once to another thread's mmap (the JVM's own
     * threads map memory all the time), so "nothing is mapped there" cannot be asked; "nothing of
     * what was there is left" can, since every mapping that intersected the range loses at least
     * that part and so changes its bounds.
     */
    public static List<Mapping> survivors(List<Mapping> before, long addr, long len) {
        List<Mapping> left = new ArrayList<>();
        for (Mapping m : mappings(addr, len)) {
            if (before.contains(m)) {
                left.add(m);
            }
        }
        return left;
    }

    /**
     * Which parts of [addr, addr+len) are mapped and with what permissions: the mappings
     * intersecting the range, each cut to it. Unlike {@link #mappings} it does not change when
     * the kernel merges a neighbour outside the range into a mapping that reaches into it.
     */
    public static List<Mapping> layout(long addr, long len) {
        List<Mapping> out = new ArrayList<>();
        for (Mapping m : mappings(addr, len)) {
            out.add(m.clip(addr, len));
        }
        return out;
    }

    /**
     * Residency of every page of [addr, addr+len) from /proc/self/pagemap (one 8-byte entry per
     * virtual page; the present, swapped, file and exclusive bits are readable without privileges).
     * Unmapped pages count as neither present nor swapped. {@code addr} must be page-aligned; a
     * length that is not a page multiple covers the last partial page.
     */
    public static Pages pages(long addr, long len) {
        long pages = pageCount(addr, len);
        long present = 0;
        long own = 0;
        long swapped = 0;
        ByteBuffer buf = ByteBuffer.allocate((int) Math.min(pages, CHUNK) * Long.BYTES).order(ByteOrder.nativeOrder());
        try (FileChannel ch = FileChannel.open(PAGEMAP, StandardOpenOption.READ)) {
            long done = 0;
            while (done < pages) {
                int n = (int) Math.min(pages - done, CHUNK);
                buf.clear().limit(n * Long.BYTES);
                long pos = (addr / PAGE + done) * Long.BYTES;
                while (buf.hasRemaining()) {
                    if (ch.read(buf, pos + buf.position()) <= 0) {
                        throw new IllegalStateException("/proc/self/pagemap ended at entry "
                                + (pos + buf.position()) / Long.BYTES + " reading " + Ranges.format(addr, len));
                    }
                }
                buf.flip();
                for (int i = 0; i < n; i++) {
                    long e = buf.getLong();
                    if ((e & PM_PRESENT) != 0) {
                        present++;
                        // The shared zero page has no exclusive bit; the huge zero page has the file bit.
                        if ((e & PM_EXCLUSIVE) != 0 && (e & PM_FILE) == 0) {
                            own++;
                        }
                    } else if ((e & PM_SWAP) != 0) {
                        swapped++;
                    }
                }
                done += n;
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read /proc/self/pagemap for " + Ranges.format(addr, len), e);
        }
        return new Pages(present * PAGE, own * PAGE, swapped * PAGE);
    }

    /**
     * Rss of exactly [addr, addr+len), in bytes: the pages that pagemap says are present and hold
     * a frame of their own. Like the Rss of smaps and of /proc/self/status, it leaves out the
     * kernel's shared zero page, which a read of a never-written page may map. Not taken from
     * smaps: smaps' Rss is per VMA, and a VMA the kernel merged with neighbouring mappings counts
     * their pages too (see the class comment). A page shared copy-on-write with another process
     * (after fork) or merged by KSM is not counted; gomem neither forks nor marks memory mergeable.
     */
    public static long rssBytes(long addr, long len) {
        return pages(addr, len).own();
    }

    /**
     * Bytes of [addr, addr+len) resident in memory according to {@code mincore}: every present
     * page, the shared zero page included (so a page that was only read counts).
     */
    public static long residentBytes(long addr, long len) {
        pageCount(addr, len);
        byte[] vec = Syscalls.mincore(addr, len);
        long pages = 0;
        for (byte b : vec) {
            pages += b & 1;
        }
        return pages * PAGE;
    }

    /**
     * Whether a read of a never-written anonymous page maps the kernel's shared zero page (true:
     * Rss stays as it was) or gives the page a frame of its own (false: the read costs a page, as
     * a write would). Asked of the kernel on a scratch page mapped for the purpose. Most kernels
     * share the zero page; some builds never do.
     */
    public static boolean readFaultMapsZeroPage() {
        long a = Syscalls.mmap("KernelView", 0, PAGE, Syscalls.PROT_READ | Syscalls.PROT_WRITE,
                Syscalls.MAP_PRIVATE | Syscalls.MAP_ANONYMOUS);
        try {
            byte b = io.gomem.internal.RawMemory.getByte(a);
            Pages p = pages(a, PAGE);
            if (b != 0 || p.present() != PAGE) {
                throw new IllegalStateException("a fresh anonymous page at " + Ranges.format(a, PAGE) + " read "
                        + b + " and is " + (p.present() == PAGE ? "" : "not ") + "present after the read");
            }
            return p.own() == 0;
        } finally {
            Syscalls.munmap("KernelView", a, PAGE);
        }
    }

    /**
     * Bytes of transparent huge pages ({@code AnonHugePages} in {@code /proc/self/smaps}) in the
     * mappings that start in {@code [lo, hi)}.
     */
    public static long anonHugePages(long lo, long hi) {
        long total = 0;
        boolean in = false;
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/smaps"))) {
                int dash = line.indexOf('-');
                if (dash > 0 && line.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
                    long start = Long.parseUnsignedLong(line.substring(0, dash), 16);
                    in = Long.compareUnsigned(start, lo) >= 0 && Long.compareUnsigned(start, hi) < 0;
                } else if (in && line.startsWith("AnonHugePages:")) {
                    total += Long.parseLong(line.replaceAll("[^0-9]", "")) << 10;
                }
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("reading /proc/self/smaps", e);
        }
        return total;
    }

    /** The permissions ({@code rw-p}, {@code ---p}) of the mapping holding {@code addr}, or null if unmapped. */
    public static String permsAt(long addr) {
        for (Mapping m : mappings(addr, PAGE)) {
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

    /** Pages covering [addr, addr+len); refuses an unaligned address or a negative length. */
    private static long pageCount(long addr, long len) {
        if (addr % PAGE != 0) {
            throw new IllegalArgumentException("address 0x" + Long.toHexString(addr)
                    + " is not a multiple of the page size " + PAGE);
        }
        if (len < 0) {
            throw new IllegalArgumentException("length " + len + " is negative");
        }
        return (len + PAGE - 1) / PAGE;
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
