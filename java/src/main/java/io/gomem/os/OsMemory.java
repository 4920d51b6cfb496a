package io.gomem.os;

import io.gomem.internal.Options;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The OS layer: Go's region state machine ({@code mem_linux.go}) over mmap, madvise, mprotect and
 * munmap, for every region this instance created.
 *
 * <p><b>Owns</b> the page-exact state of every range it reserved or allocated ({@link #runs}), the
 * byte counters per state and purpose ({@link #bytes}), and the system calls that change them.
 *
 * <p><b>Transitions</b> (Go's, exactly; see {@link MemState}):
 * <pre>
 *   sysAlloc    None               → Ready     mmap rw, kernel's address
 *   sysReserve  None               → Reserved  mmap PROT_NONE MAP_NORESERVE, hint address
 *   sysMap      Reserved           → Prepared  mmap rw MAP_FIXED
 *   sysUsed     Prepared           → Ready     no call (harddecommit: mmap rw MAP_FIXED)
 *   sysUnused   Ready              → Prepared  madvise DONTNEED | FREE (harddecommit: mmap PROT_NONE MAP_FIXED)
 *   sysFault    Ready | Prepared   → Reserved  mmap PROT_NONE MAP_FIXED
 *   sysFree     any but None       → None      munmap
 *   sysHugePage, sysNoHugePage, sysHugePageCollapse: advice on Prepared | Ready; no state change.
 * </pre>
 *
 * <p><b>Invariants.</b> {@link #runs} maps the start of each maximal run of pages with one state
 * and purpose to that run; runs never overlap, no run is {@link MemState#NONE} (absence is None),
 * and adjacent runs differ in state or purpose. {@code bytes[s][p]} equals the total length of the
 * runs in state {@code s} with purpose {@code p} ({@link #checkInvariants()} recomputes it). Every
 * transition validates its arguments and the current state of every page it touches before it
 * makes a system call; a refused or failed transition leaves both the kernel and the tracker as
 * they were. A system call the kernel refuses with ENOMEM throws {@link OutOfNativeMemoryError},
 * any other failure {@link OsMemoryException}.
 *
 * <p><b>Guards.</b> {@link #lock} guards {@link #runs}, {@link #bytes} and {@link #sysUnusedMode};
 * it is held across the system call so that the state check, the call and the update are one step.
 * The counters are also readable without the lock through {@link #bytes(MemState)} (a racy read
 * of a long field is atomic on 64-bit JVMs and is only used for reporting).
 *
 * <p><b>Logging.</b> Every transition is a JFR event ({@code io.gomem.OsTransition}), is logged
 * through {@link System.Logger} {@code io.gomem.os} at DEBUG, and, with {@code gomem.debug=sys} ({@code GOMEM_DEBUG=sys}), printed as one line to
 * stderr: {@code gomem: sysMap [0x7f.., 0x7f..) 4 MiB heap Reserved -> Prepared: ok}.
 */
public final class OsMemory {
    /**
     * The physical page size (Go's {@code physPageSize}): every address and length given to this
     * class is a multiple of it. The kernel's page size, unless {@code gomem.physPageSize} asks for
     * a larger power of two (a simulated kernel with 16 or 64 KiB pages, for tests).
     */
    public static final long PAGE_SIZE = physPageSize(Options.PHYS_PAGE_SIZE.value(), Syscalls.OS_PAGE_SIZE);

    /** {@code gomem.physPageSize} over the kernel's page size: 0 or empty for the kernel's, else a power-of-two multiple of it. */
    static long physPageSize(String value, long kernel) {
        long want = value == null || value.isBlank() || value.trim().equals("0") ? 0
                : Options.PHYS_PAGE_SIZE.bytesValue(1, 0);
        if (want == 0 || want == kernel) {
            return kernel;
        }
        if (Long.bitCount(want) != 1 || want < kernel) {
            throw Options.PHYS_PAGE_SIZE.refused(value, "a physical page size must be a power of two and at least the"
                    + " kernel's page size, " + kernel + " bytes");
        }
        return want;
    }
    /** The kernel's own page size ({@code sysconf(_SC_PAGESIZE)}): what one touched byte makes resident. */
    public static final long KERNEL_PAGE_SIZE = Syscalls.OS_PAGE_SIZE;
    /**
     * How this JVM's OS layer calls the kernel: {@code "panama"} (java.lang.foreign through the
     * jextract bindings) or {@code "jni"} (gomem's own C library), as {@code gomem.backend} chose
     * ({@code auto}: Panama from JDK 25, the jar's part that has it; JNI below). Both make the
     * same calls with the same errno.
     */
    public static String backend() {
        return Syscalls.BACKEND.name();
    }

    /** The transparent huge page size on x86-64 and arm64 with 4 KiB pages. */
    public static final long HUGE_PAGE_SIZE = 2L << 20;

    private static final System.Logger LOG = System.getLogger("io.gomem.os");
    /** {@code gomem.debug=sys}: 1 prints transitions with per-span calls coalesced, 2 every call (GODEBUG-style levels). */
    private static final int DEBUG_SYS = Options.debugLevel("sys");

    /** How {@link #sysUnused} gives pages back: see {@link Options#SYS_UNUSED_MODE}. */
    public enum UnusedMode { DONTNEED, FREE, HARD_DECOMMIT }

    /** A maximal run of pages with one state and purpose: [start, end). */
    private record Run(long end, MemState state, Purpose purpose) {
    }

    private final ReentrantLock lock = new ReentrantLock();
    /** Guarded by lock. Start address → run. */
    private final TreeMap<Long, Run> runs = new TreeMap<>();
    /** Guarded by lock for writes. [state][purpose] → bytes. */
    private final long[][] bytes = new long[MemState.values().length][Purpose.values().length];
    /** Guarded by lock. May drop from FREE to DONTNEED for good if the kernel lacks MADV_FREE. */
    private UnusedMode sysUnusedMode;

    /** An OS layer whose sysUnused mode comes from {@code gomem.sysUnused}. */
    public OsMemory() {
        this(parseMode(Options.SYS_UNUSED_MODE.value()));
    }

    public OsMemory(UnusedMode mode) {
        this.sysUnusedMode = mode;
    }

    static UnusedMode parseMode(String v) {
        return switch (v.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "dontneed", "" -> UnusedMode.DONTNEED;
            case "free" -> UnusedMode.FREE;
            case "harddecommit", "hard" -> UnusedMode.HARD_DECOMMIT;
            default -> throw Options.SYS_UNUSED_MODE.refused(v, "expected dontneed, free or harddecommit");
        };
    }

    /** The mode in force now (FREE falls back to DONTNEED for good when the kernel refuses it). */
    public UnusedMode sysUnusedMode() {
        lock.lock();
        try {
            return sysUnusedMode;
        } finally {
            lock.unlock();
        }
    }

    // ───────────────────────────── transitions ─────────────────────────────

    /** None → Ready: a fresh read-write mapping of {@code len} bytes at the kernel's choice. */
    public long sysAlloc(long len, Purpose purpose) {
        checkLength("sysAlloc", len);
        lock.lock();
        try {
            long addr;
            try {
                addr = alignedMmap("sysAlloc", len, Syscalls.PROT_READ | Syscalls.PROT_WRITE,
                        Syscalls.MAP_PRIVATE | Syscalls.MAP_ANONYMOUS);
            } catch (OsMemoryException | OutOfNativeMemoryError e) {
                log("sysAlloc", 0, len, purpose, MemState.NONE, MemState.READY, e.getMessage());
                throw e;
            }
            set(addr, addr + len, MemState.READY, purpose);
            log("sysAlloc", addr, len, purpose, MemState.NONE, MemState.READY, "ok");
            return addr;
        } finally {
            lock.unlock();
        }
    }

    /**
     * A mapping of {@code len} bytes at the kernel's choice, aligned to {@link #PAGE_SIZE}: the
     * kernel's alignment unless a larger physical page is simulated, then an over-sized mapping
     * with its slack unmapped on both sides.
     */
    private static long alignedMmap(String call, long len, int prot, int flags) {
        if (PAGE_SIZE == Syscalls.OS_PAGE_SIZE) {
            return Syscalls.mmap(call, 0, len, prot, flags);
        }
        long raw = Syscalls.mmap(call, 0, len + PAGE_SIZE, prot, flags);
        long addr = (raw + PAGE_SIZE - 1) & -PAGE_SIZE;
        if (addr > raw) {
            Syscalls.munmap(call, raw, addr - raw);
        }
        long tail = raw + len + PAGE_SIZE - (addr + len);
        if (tail > 0) {
            Syscalls.munmap(call, addr + len, tail);
        }
        return addr;
    }

    /**
     * None → Reserved: address space only. {@code hint} (0 for none) is where the caller would
     * like it; the kernel may place it elsewhere, and the returned address is the truth.
     */
    public long sysReserve(long hint, long len, Purpose purpose) {
        checkLength("sysReserve", len);
        if (hint != 0) {
            checkAddress("sysReserve", hint, len);
        }
        lock.lock();
        try {
            long addr;
            try {
                addr = Syscalls.mmap("sysReserve", hint, len, Syscalls.PROT_NONE,
                        Syscalls.MAP_PRIVATE | Syscalls.MAP_ANONYMOUS | Syscalls.MAP_NORESERVE);
            } catch (OsMemoryException | OutOfNativeMemoryError e) {
                log("sysReserve", hint, len, purpose, MemState.NONE, MemState.RESERVED, e.getMessage());
                throw e;
            }
            if (addr % PAGE_SIZE != 0) { // a simulated physical page larger than the kernel's: place it again, aligned
                Syscalls.munmap("sysReserve", addr, len);
                return sysReserveAligned(0, len, PAGE_SIZE, purpose);
            }
            set(addr, addr + len, MemState.RESERVED, purpose);
            log("sysReserve", addr, len, purpose, MemState.NONE, MemState.RESERVED, "ok");
            return addr;
        } finally {
            lock.unlock();
        }
    }

    /**
     * None → Reserved, aligned: reserves {@code len} bytes at an address that is a multiple of
     * {@code align} (a power of two, at least the page size), by reserving {@code len + align} and
     * unmapping the slack on both sides. Only the aligned range is ever tracked.
     */
    public long sysReserveAligned(long hint, long len, long align, Purpose purpose) {
        checkLength("sysReserveAligned", len);
        if (align < PAGE_SIZE || Long.bitCount(align) != 1) {
            throw new IllegalArgumentException("sysReserveAligned: alignment " + align
                    + " must be a power of two and at least the page size " + PAGE_SIZE);
        }
        if (hint != 0 && (hint & (align - 1)) == 0) {
            long addr = sysReserve(hint, len, purpose);
            if ((addr & (align - 1)) == 0) {
                return addr;
            }
            sysFree(addr, len);
        }
        long total = Math.addExact(len, align);
        lock.lock();
        try {
            long raw;
            try {
                raw = Syscalls.mmap("sysReserveAligned", 0, total, Syscalls.PROT_NONE,
                        Syscalls.MAP_PRIVATE | Syscalls.MAP_ANONYMOUS | Syscalls.MAP_NORESERVE);
            } catch (OsMemoryException | OutOfNativeMemoryError e) {
                log("sysReserve", 0, len, purpose, MemState.NONE, MemState.RESERVED, e.getMessage());
                throw e;
            }
            long addr = (raw + align - 1) & -align;
            if (addr > raw) {
                Syscalls.munmap("sysReserveAligned", raw, addr - raw);
            }
            long tail = raw + total - (addr + len);
            if (tail > 0) {
                Syscalls.munmap("sysReserveAligned", addr + len, tail);
            }
            set(addr, addr + len, MemState.RESERVED, purpose);
            log("sysReserve", addr, len, purpose, MemState.NONE, MemState.RESERVED, "ok (aligned to " + Ranges.bytes(align) + ")");
            return addr;
        } finally {
            lock.unlock();
        }
    }

    private static final EnumSet<MemState> FROM_RESERVED = EnumSet.of(MemState.RESERVED);
    private static final EnumSet<MemState> FROM_PREPARED = EnumSet.of(MemState.PREPARED);
    private static final EnumSet<MemState> FROM_READY = EnumSet.of(MemState.READY);
    private static final EnumSet<MemState> FROM_MAPPED = EnumSet.of(MemState.PREPARED, MemState.READY);
    private static final EnumSet<MemState> FROM_ANY = EnumSet.of(MemState.RESERVED, MemState.PREPARED, MemState.READY);

    /** Reserved → Prepared: commits address space to a read-write mapping (Go's sysMap). */
    public void sysMap(long addr, long len) {
        transition("sysMap", addr, len, FROM_RESERVED, MemState.PREPARED, () ->
                Syscalls.mmap("sysMap", addr, len, Syscalls.PROT_READ | Syscalls.PROT_WRITE,
                        Syscalls.MAP_PRIVATE | Syscalls.MAP_ANONYMOUS | Syscalls.MAP_FIXED));
    }

    /** Prepared → Ready: the range may now be used. No system call unless hard decommit is on. */
    public void sysUsed(long addr, long len) {
        transition("sysUsed", addr, len, FROM_PREPARED, MemState.READY, () -> {
            if (sysUnusedMode == UnusedMode.HARD_DECOMMIT) {
                Syscalls.mmap("sysUsed", addr, len, Syscalls.PROT_READ | Syscalls.PROT_WRITE,
                        Syscalls.MAP_PRIVATE | Syscalls.MAP_ANONYMOUS | Syscalls.MAP_FIXED);
            }
        });
    }

    /**
     * Prepared → Ready for every Prepared page of a range whose pages are all Prepared or Ready
     * (Ready pages are left as they are): what the heap needs when a run of pages it reuses was
     * partly scavenged. Returns the bytes that became Ready.
     */
    public long sysUsedWherePrepared(long addr, long len) {
        checkRange("sysUsed", addr, len);
        lock.lock();
        try {
            checkStates("sysUsed", addr, addr + len, FROM_MAPPED, MemState.READY);
            long made = 0;
            for (Segment s : segments(addr, addr + len)) {
                if (s.state == MemState.PREPARED) {
                    sysUsed(s.start, s.end - s.start); // reentrant lock: one step with the check above
                    made += s.end - s.start;
                }
            }
            return made;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Ready → Prepared: tells the kernel the contents are not needed, so it may take the backing
     * pages (Rss drops at once with DONTNEED; lazily with FREE). Contents are undefined after.
     */
    public void sysUnused(long addr, long len) {
        transition("sysUnused", addr, len, FROM_READY, MemState.PREPARED, () -> {
            switch (sysUnusedMode) {
                case DONTNEED -> Syscalls.madvise("sysUnused", addr, len, Syscalls.MADV_DONTNEED);
                case FREE -> {
                    int errno = Syscalls.madviseErrno(addr, len, Syscalls.MADV_FREE);
                    if (errno == Syscalls.EINVAL) {
                        sysUnusedMode = UnusedMode.DONTNEED; // kernel without MADV_FREE: for good
                        LOG.log(System.Logger.Level.DEBUG, "MADV_FREE refused (EINVAL): using MADV_DONTNEED from now on");
                        Syscalls.madvise("sysUnused", addr, len, Syscalls.MADV_DONTNEED);
                    } else if (errno != 0) {
                        throw Syscalls.failure("sysUnused", "madvise", addr, len, errno);
                    }
                }
                case HARD_DECOMMIT -> Syscalls.mmap("sysUnused", addr, len, Syscalls.PROT_NONE,
                        Syscalls.MAP_PRIVATE | Syscalls.MAP_ANONYMOUS | Syscalls.MAP_FIXED);
            }
        });
    }

    /** Ready or Prepared → Reserved: any access faults from now on; backing is dropped. */
    public void sysFault(long addr, long len) {
        transition("sysFault", addr, len, FROM_MAPPED, MemState.RESERVED, () ->
                Syscalls.mmap("sysFault", addr, len, Syscalls.PROT_NONE,
                        Syscalls.MAP_PRIVATE | Syscalls.MAP_ANONYMOUS | Syscalls.MAP_FIXED));
    }

    /** Any state but None → None: unmaps the range (which may be part of a region). */
    public void sysFree(long addr, long len) {
        transition("sysFree", addr, len, FROM_ANY, MemState.NONE, () -> Syscalls.munmap("sysFree", addr, len));
    }

    /**
     * Advises the kernel to back the range with transparent huge pages (MADV_HUGEPAGE), on the
     * huge-page-aligned part of it; a range holding no whole huge page is left alone.
     */
    public void sysHugePage(long addr, long len) {
        advise("sysHugePage", addr, len, Syscalls.MADV_HUGEPAGE, true);
    }

    /** Advises the kernel not to use huge pages for the range (MADV_NOHUGEPAGE). */
    public void sysNoHugePage(long addr, long len) {
        advise("sysNoHugePage", addr, len, Syscalls.MADV_NOHUGEPAGE, false);
    }

    /**
     * Asks the kernel to collapse the Ready range into huge pages now (MADV_COLLAPSE, Linux 6.1+).
     * Best effort, as in Go: returns false when the kernel cannot or will not (EINVAL on older
     * kernels, EAGAIN or ENOMEM when it has no huge page to give).
     */
    public boolean sysHugePageCollapse(long addr, long len) {
        checkRange("sysHugePageCollapse", addr, len);
        lock.lock();
        try {
            checkStates("sysHugePageCollapse", addr, addr + len, FROM_READY, null);
            int errno = Syscalls.madviseErrno(addr, len, Syscalls.MADV_COLLAPSE);
            log("sysHugePageCollapse", addr, len, purposeAt(addr), MemState.READY, MemState.READY,
                    errno == 0 ? "ok" : "not collapsed: " + OsMemoryException.errnoName(errno));
            if (errno == 0) {
                return true;
            }
            if (errno == Syscalls.EINVAL || errno == Syscalls.EAGAIN || errno == Syscalls.ENOMEM) {
                return false;
            }
            throw Syscalls.failure("sysHugePageCollapse", "madvise", addr, len, errno);
        } finally {
            lock.unlock();
        }
    }

    private void advise(String call, long addr, long len, int advice, boolean alignInward) {
        checkRange(call, addr, len);
        lock.lock();
        try {
            checkStates(call, addr, addr + len, FROM_MAPPED, null);
            long beg = alignInward ? (addr + HUGE_PAGE_SIZE - 1) & -HUGE_PAGE_SIZE : addr;
            long end = alignInward ? (addr + len) & -HUGE_PAGE_SIZE : addr + len;
            MemState s = stateAt(addr);
            if (beg < end) {
                Syscalls.madvise(call, beg, end - beg, advice);
                log(call, beg, end - beg, purposeAt(addr), s, s, "ok");
            } else {
                log(call, addr, len, purposeAt(addr), s, s, "no whole huge page: nothing to do");
            }
        } finally {
            lock.unlock();
        }
    }

    /** The system call of a transition; throws OsMemoryException or OutOfNativeMemoryError on failure. */
    private interface Call {
        void run();
    }

    private void transition(String call, long addr, long len, EnumSet<MemState> from, MemState to, Call syscall) {
        checkRange(call, addr, len);
        lock.lock();
        try {
            long end = addr + len;
            MemState old = checkStates(call, addr, end, from, to);
            Purpose purpose = purposeAt(addr);
            try {
                syscall.run();
            } catch (OsMemoryException | OutOfNativeMemoryError e) {
                log(call, addr, len, purpose, old, to, e.getMessage());
                throw e;
            }
            if (to == MemState.NONE) {
                clear(addr, end);
            } else {
                setKeepingPurpose(addr, end, to);
            }
            log(call, addr, len, purpose, old, to, "ok");
        } finally {
            lock.unlock();
        }
    }

    // ───────────────────────────── queries ─────────────────────────────

    /** The state of the page holding {@code addr} ({@link MemState#NONE} if not ours). */
    public MemState stateAt(long addr) {
        lock.lock();
        try {
            Map.Entry<Long, Run> e = runs.floorEntry(addr);
            return e != null && addr < e.getValue().end ? e.getValue().state : MemState.NONE;
        } finally {
            lock.unlock();
        }
    }

    private Purpose purposeAt(long addr) {
        Map.Entry<Long, Run> e = runs.floorEntry(addr);
        return e != null && addr < e.getValue().end ? e.getValue().purpose : Purpose.OTHER;
    }

    /** True if every page of [addr, addr+len) is in {@code state}. */
    public boolean isState(long addr, long len, MemState state) {
        lock.lock();
        try {
            for (Segment s : segments(addr, addr + len)) {
                if (s.state != state) {
                    return false;
                }
            }
            return true;
        } finally {
            lock.unlock();
        }
    }

    /** Bytes in {@code state} over every purpose. */
    public long bytes(MemState state) {
        long sum = 0;
        for (long b : bytes[state.ordinal()]) {
            sum += b;
        }
        return sum;
    }

    /** Bytes in {@code state} with {@code purpose}. */
    public long bytes(MemState state, Purpose purpose) {
        return bytes[state.ordinal()][purpose.ordinal()];
    }

    /** A description of every run, for debugging: {@code [0x.., 0x..) 4 MiB Ready heap}. */
    public String describe() {
        lock.lock();
        try {
            StringBuilder sb = new StringBuilder();
            for (Map.Entry<Long, Run> e : runs.entrySet()) {
                Run r = e.getValue();
                sb.append(Ranges.format(e.getKey(), r.end - e.getKey())).append(' ')
                        .append(r.state).append(' ').append(r.purpose.name().toLowerCase(java.util.Locale.ROOT)).append('\n');
            }
            return sb.toString();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Recomputes the counters from the runs and checks the run invariants; throws
     * IllegalStateException describing the first violation.
     */
    public void checkInvariants() {
        lock.lock();
        try {
            long[][] want = new long[bytes.length][bytes[0].length];
            long prevEnd = Long.MIN_VALUE;
            Run prev = null;
            for (Map.Entry<Long, Run> e : runs.entrySet()) {
                long start = e.getKey();
                Run r = e.getValue();
                if (r.end <= start || r.state == MemState.NONE) {
                    throw new IllegalStateException("bad run " + Ranges.format(start, r.end - start) + " " + r.state);
                }
                if (start < prevEnd) {
                    throw new IllegalStateException("overlapping runs at 0x" + Long.toHexString(start));
                }
                if (prev != null && start == prevEnd && prev.state == r.state && prev.purpose == r.purpose) {
                    throw new IllegalStateException("uncoalesced runs at 0x" + Long.toHexString(start));
                }
                if (start % PAGE_SIZE != 0 || r.end % PAGE_SIZE != 0) {
                    throw new IllegalStateException("unaligned run " + Ranges.format(start, r.end - start));
                }
                want[r.state.ordinal()][r.purpose.ordinal()] += r.end - start;
                prev = r;
                prevEnd = r.end;
            }
            for (MemState s : MemState.values()) {
                for (Purpose p : Purpose.values()) {
                    if (want[s.ordinal()][p.ordinal()] != bytes[s.ordinal()][p.ordinal()]) {
                        throw new IllegalStateException("counter " + s + "/" + p + " is "
                                + bytes[s.ordinal()][p.ordinal()] + " but runs hold " + want[s.ordinal()][p.ordinal()]);
                    }
                }
            }
        } finally {
            lock.unlock();
        }
    }

    // ───────────────────────────── validation ─────────────────────────────

    private static void checkLength(String call, long len) {
        if (len <= 0 || len % PAGE_SIZE != 0) {
            throw new IllegalArgumentException(call + ": length " + len
                    + " must be positive and a multiple of the page size " + PAGE_SIZE);
        }
    }

    private static void checkAddress(String call, long addr, long len) {
        if (addr % PAGE_SIZE != 0) {
            throw new IllegalArgumentException(call + ": address 0x" + Long.toHexString(addr)
                    + " must be a multiple of the page size " + PAGE_SIZE);
        }
        if (addr < 0 || addr + len < addr) {
            throw new IllegalArgumentException(call + ": range at 0x" + Long.toHexString(addr) + " + " + len
                    + " overflows the address space");
        }
    }

    private static void checkRange(String call, long addr, long len) {
        checkLength(call, len);
        checkAddress(call, addr, len);
        if (addr == 0) {
            throw new IllegalArgumentException(call + ": address 0 is never a region of ours");
        }
    }

    /** A piece of [start, end) with one state (NONE for gaps). */
    private record Segment(long start, long end, MemState state) {
    }

    private List<Segment> segments(long start, long end) {
        List<Segment> out = new ArrayList<>();
        long at = start;
        Map.Entry<Long, Run> e = runs.floorEntry(start);
        if (e == null || e.getValue().end <= start) {
            e = runs.higherEntry(start);
        }
        while (at < end) {
            if (e == null || e.getKey() >= end) {
                out.add(new Segment(at, end, MemState.NONE));
                break;
            }
            long rs = Math.max(e.getKey(), at);
            if (rs > at) {
                out.add(new Segment(at, rs, MemState.NONE));
            }
            long re = Math.min(e.getValue().end, end);
            out.add(new Segment(rs, re, e.getValue().state));
            at = re;
            e = runs.higherEntry(e.getKey());
        }
        return out;
    }

    /**
     * Checks that every page of [start, end) is in one of {@code from}; returns the state found if
     * it is one state, else null. Refuses with IllegalStateException naming the range, the rule and
     * the states found.
     */
    private MemState checkStates(String call, long start, long end, EnumSet<MemState> from, MemState to) {
        assert lock.isHeldByCurrentThread();
        List<Segment> segs = segments(start, end);
        MemState single = segs.get(0).state;
        boolean ok = true;
        for (Segment s : segs) {
            if (!from.contains(s.state)) {
                ok = false;
            }
            if (s.state != single) {
                single = null;
            }
        }
        if (!ok) {
            StringBuilder found = new StringBuilder();
            for (Segment s : segs) {
                if (!found.isEmpty()) {
                    found.append(", ");
                }
                found.append(s.state).append(" at ").append(Ranges.format(s.start, s.end - s.start));
            }
            String msg = call + " " + Ranges.format(start, end - start) + " refused: "
                    + (to == null ? "needs every page " : "moves pages to " + to + " only from ")
                    + join(from) + ", found " + found;
            log(call, start, end - start, purposeAt(start), single == null ? MemState.NONE : single,
                    to == null ? single : to, "refused");
            throw new IllegalStateException(msg);
        }
        return single;
    }

    private static String join(EnumSet<MemState> states) {
        StringBuilder sb = new StringBuilder();
        for (MemState s : states) {
            if (!sb.isEmpty()) {
                sb.append(" or ");
            }
            sb.append(s);
        }
        return sb.toString();
    }

    // ───────────────────────────── run bookkeeping ─────────────────────────────

    /** Splits the run containing {@code at} (if any) so that a run starts exactly at {@code at}. */
    private void splitAt(long at) {
        Map.Entry<Long, Run> e = runs.floorEntry(at);
        if (e != null && e.getKey() < at && at < e.getValue().end) {
            Run r = e.getValue();
            runs.put(e.getKey(), new Run(at, r.state, r.purpose));
            runs.put(at, new Run(r.end, r.state, r.purpose));
        }
    }

    private void clear(long start, long end) {
        splitAt(start);
        splitAt(end);
        for (Map.Entry<Long, Run> e : new ArrayList<>(runs.subMap(start, end).entrySet())) {
            Run r = e.getValue();
            account(r.state, r.purpose, -(r.end - e.getKey()));
            runs.remove(e.getKey());
        }
    }

    /** Sets [start, end) to {@code state} with {@code purpose}; the range was None before. */
    private void set(long start, long end, MemState state, Purpose purpose) {
        clear(start, end); // normally nothing: the kernel gave us fresh address space
        runs.put(start, new Run(end, state, purpose));
        account(state, purpose, end - start);
        coalesce(start);
        coalesce(end);
    }

    /** Sets every page of [start, end), all of which are ours, to {@code state}, keeping purposes. */
    private void setKeepingPurpose(long start, long end, MemState state) {
        splitAt(start);
        splitAt(end);
        for (Map.Entry<Long, Run> e : new ArrayList<>(runs.subMap(start, end).entrySet())) {
            Run r = e.getValue();
            long n = r.end - e.getKey();
            account(r.state, r.purpose, -n);
            account(state, r.purpose, n);
            runs.put(e.getKey(), new Run(r.end, state, r.purpose));
        }
        for (Long k : new ArrayList<>(runs.subMap(start, true, end, true).keySet())) {
            coalesce(k);
        }
    }

    /** Merges the run starting at {@code at} into the run ending at {@code at} if they match. */
    private void coalesce(long at) {
        Run r = runs.get(at);
        Map.Entry<Long, Run> prev = runs.lowerEntry(at);
        if (r != null && prev != null && prev.getValue().end == at
                && prev.getValue().state == r.state && prev.getValue().purpose == r.purpose) {
            runs.remove(at);
            runs.put(prev.getKey(), new Run(r.end, r.state, r.purpose));
        }
    }

    private void account(MemState state, Purpose purpose, long delta) {
        bytes[state.ordinal()][purpose.ordinal()] += delta;
    }

    // ───────────────────────────── logging ─────────────────────────────

    private static void log(String call, long addr, long len, Purpose purpose, MemState from, MemState to, String result) {
        OsTransitionEvent event = new OsTransitionEvent();
        if (event.shouldCommit()) {
            event.call = call;
            event.address = addr;
            event.length = len;
            event.purpose = purpose.name().toLowerCase(java.util.Locale.ROOT);
            event.from = from == null ? "mixed" : from.toString();
            event.to = String.valueOf(to);
            event.result = result;
            event.commit();
        }
        boolean debug = LOG.isLoggable(System.Logger.Level.DEBUG);
        boolean trace = LOG.isLoggable(System.Logger.Level.TRACE);
        if (DEBUG_SYS == 0 && !debug && !trace) {
            return;
        }
        String what = purpose.name().toLowerCase(java.util.Locale.ROOT) + " " + (from == null ? "mixed" : from) + " -> " + to;
        String line = call + " " + Ranges.format(addr, len) + " " + what + ": " + result;
        if (trace) {
            LOG.log(System.Logger.Level.TRACE, line); // every call
        }
        if (DEBUG_SYS >= 2) {
            System.err.println("gomem: " + line);
        }
        if (PER_SPAN.contains(call) && result.equals("ok")) {
            Coalesced.add(call + " " + what, len, debug, DEBUG_SYS == 1);
        } else {
            Coalesced.flush();
            if (debug) {
                LOG.log(System.Logger.Level.DEBUG, line);
            }
            if (DEBUG_SYS == 1) {
                System.err.println("gomem: " + line);
            }
        }
    }

    /** Calls the heap makes once per span (or run of pages): coalesced at debug level 1. */
    private static final java.util.Set<String> PER_SPAN = java.util.Set.of("sysUsed", "sysUnused", "sysHugePage",
            "sysNoHugePage");

    /**
     * A run of like per-span calls (same call, purpose and states), printed as one line (e.g.
     * {@code sysUsed x8192, 64 MiB heap Prepared -> Ready}) when a different call comes, a second
     * after the run began (on the next call), or at exit. Guarded by the class's monitor.
     */
    private static final class Coalesced {
        private static String key;
        private static long calls;
        private static long bytes;
        private static long since;
        private static boolean toLogger;
        private static boolean toStderr;
        private static boolean hooked;

        static synchronized void add(String k, long len, boolean logger, boolean stderr) {
            if (key != null && (!key.equals(k) || System.nanoTime() - since > 1_000_000_000L)) {
                flush();
            }
            if (key == null) {
                key = k;
                since = System.nanoTime();
                toLogger = logger;
                toStderr = stderr;
                if (!hooked) {
                    hooked = true;
                    Runtime.getRuntime().addShutdownHook(new Thread(Coalesced::flush, "gomem-debug-flush"));
                }
            }
            calls++;
            bytes += len;
        }

        static synchronized void flush() {
            if (key == null) {
                return;
            }
            int sp = key.indexOf(' ');
            String line = key.substring(0, sp) + " x" + calls + ", " + Ranges.bytes(bytes) + key.substring(sp)
                    + " (coalesced)";
            if (toLogger) {
                LOG.log(System.Logger.Level.DEBUG, line);
            }
            if (toStderr) {
                System.err.println("gomem: " + line);
            }
            key = null;
            calls = 0;
            bytes = 0;
        }
    }
}
