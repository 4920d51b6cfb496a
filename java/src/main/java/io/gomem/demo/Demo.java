package io.gomem.demo;

import io.gomem.GoHeap;
import io.gomem.internal.RawMemory;
import io.gomem.os.KernelView;
import io.gomem.os.MemState;
import io.gomem.os.OsMemory;
import io.gomem.os.Purpose;

import java.util.List;

/**
 * gomem's main job for now: walks one region through every state of Go's OS state machine and,
 * at each step, asks the kernel (/proc/self/maps, /proc/self/pagemap, mincore) whether it
 * agrees; then fills and empties a {@link GoHeap} and checks that its pages really go back to the
 * kernel. Prints one {@code demo:} line per step and exits 0 only if every check held. Run with
 * {@code -Dgomem.debug=sys} to also see the OS layer's own line for each transition on stderr.
 */
public final class Demo {
    private static final long PAGE = OsMemory.PAGE_SIZE;
    /** What one touched byte makes resident: the kernel's page (smaller than PAGE when a larger physical page is simulated). */
    private static final long KPAGE = OsMemory.KERNEL_PAGE_SIZE;
    private static int failures;

    private Demo() {
    }

    public static void main(String[] args) {
        OsMemory os = new OsMemory();
        long pages = 64;
        long touched = 16;
        long len = pages * PAGE;
        long limit = KernelView.cgroupMemoryLimit();
        say("Java " + Runtime.version().feature() + " (" + System.getProperty("java.vm.name") + "), OS backend "
                + OsMemory.backend());
        say("cgroup memory limit " + (limit < 0 ? "none" : limit));
        say("OS page size " + PAGE + " B, region " + pages + " pages, touching " + touched);
        boolean zeroPage = KernelView.readFaultMapsZeroPage();
        say("kernel: a read of a never-written page " + (zeroPage
                ? "maps the shared zero page (no Rss)" : "gets a frame of its own (Rss, as a write would)"));

        // One guard page on each side keeps our range its own mapping, so maps shows its permissions.
        long guarded = os.sysReserve(0, len + 2 * PAGE, Purpose.OTHER);
        long base = guarded + PAGE;
        check("sysReserve", "None -> Reserved", os.stateAt(base) == MemState.RESERVED,
                "---p".equals(KernelView.permsAt(base)), base, len, 0);

        os.sysMap(base, len);
        check("sysMap", "Reserved -> Prepared", os.isState(base, len, MemState.PREPARED),
                "rw-p".equals(KernelView.permsAt(base)), base, len, 0);

        os.sysUsed(base, len);
        for (long i = 0; i < touched; i++) {
            RawMemory.putByte(base + i * PAGE, (byte) 0x5a);
        }
        check("sysUsed", "Prepared -> Ready, " + touched + " pages touched", os.isState(base, len, MemState.READY),
                "rw-p".equals(KernelView.permsAt(base)), base, len, touched * KPAGE);

        os.sysUnused(base, len);
        check("sysUnused", "Ready -> Prepared", os.isState(base, len, MemState.PREPARED), true, base, len, 0);
        boolean zero = true;
        for (long i = 0; i < touched; i++) {
            zero &= RawMemory.getByte(base + i * PAGE) == 0;
        }
        // Each page read is mapped again: to the shared zero page, or to a fresh frame of its own.
        long readRss = zeroPage ? 0 : touched * KPAGE;
        KernelView.Pages read = KernelView.pages(base, len);
        record("sysUnused", touched + " pages read back " + (zero ? "zero" : "NOT zero") + ": pagemap present "
                + read.present() + " B (expect " + touched * KPAGE + " B), pagemap Rss " + read.own() + " B (expect "
                + readRss + " B)", zero && read.present() == touched * KPAGE && read.own() == readRss);

        os.sysUsed(base, len);
        RawMemory.putByte(base, (byte) 1);
        long firstRss = KernelView.rssBytes(base, PAGE);
        long rss = KernelView.rssBytes(base, len);
        long wantRss = KPAGE + (zeroPage ? 0 : (touched - 1) * KPAGE);
        record("sysUsed", "Prepared -> Ready again, 1 page written: pagemap Rss of that page " + firstRss
                + " B (expect " + KPAGE + " B), of the region " + rss + " B (expect " + wantRss + " B)",
                os.isState(base, len, MemState.READY) && firstRss == KPAGE && rss == wantRss);

        os.sysFault(base, len);
        check("sysFault", "Ready -> Reserved", os.isState(base, len, MemState.RESERVED),
                "---p".equals(KernelView.permsAt(base)), base, len, 0);

        try {
            os.sysUsed(base, len);
            record("refused", "sysUsed of a Reserved range was NOT refused", false);
        } catch (IllegalStateException expected) {
            record("refused", "illegal sysUsed of Reserved range: " + expected.getMessage(), true);
        }

        List<KernelView.Mapping> ours = KernelView.mappings(guarded, len + 2 * PAGE);
        os.sysFree(guarded, len + 2 * PAGE);
        // Another thread of this JVM may map the freed range at once: ask that none of ours is left.
        List<KernelView.Mapping> left = KernelView.survivors(ours, guarded, len + 2 * PAGE);
        List<KernelView.Mapping> reused = KernelView.mappings(guarded, len + 2 * PAGE);
        reused.removeAll(left);
        record("sysFree", "Reserved -> None: " + (left.isEmpty() ? "none" : left) + " of our " + ours.size()
                + " mapping(s) left (expect none)" + (reused.isEmpty() ? ""
                : "; the kernel already gave the range to another mapping: " + reused),
                os.stateAt(base) == MemState.NONE && left.isEmpty());

        long direct = os.sysAlloc(len, Purpose.OTHER);
        RawMemory.fill(direct, len, (byte) 7);
        record("sysAlloc", "None -> Ready directly, all " + pages + " pages touched: mincore resident "
                + KernelView.residentBytes(direct, len) + " B (expect " + len + ")",
                KernelView.residentBytes(direct, len) == len && os.stateAt(direct) == MemState.READY);
        os.sysFree(direct, len);
        os.checkInvariants();
        record("accounting", "Reserved " + os.bytes(MemState.RESERVED) + " B, Prepared " + os.bytes(MemState.PREPARED)
                + " B, Ready " + os.bytes(MemState.READY) + " B after freeing everything",
                os.bytes(MemState.RESERVED) + os.bytes(MemState.PREPARED) + os.bytes(MemState.READY) == 0);

        heapWalk();

        say(failures == 0 ? "all checks passed" : failures + " check(s) FAILED");
        System.exit(failures == 0 ? 0 : 1);
    }

    /** The heap on top: fill 64 MiB with 4 KiB objects, free them all, give the pages back. */
    private static void heapWalk() {
        try (GoHeap heap = GoHeap.builder().build()) {
            int n = 16_384;
            long size = 4096;
            long[] ps = new long[n];
            long lo = Long.MAX_VALUE;
            long hi = 0;
            for (int i = 0; i < n; i++) {
                ps[i] = heap.allocate(size);
                RawMemory.fill(ps[i], size, (byte) i);
                lo = Math.min(lo, ps[i]);
                hi = Math.max(hi, ps[i] + size);
            }
            long resident = KernelView.residentBytes(lo, hi - lo);
            record("heap", n + " objects of " + size + " B allocated and written: mincore resident "
                    + resident / 1024 + " KiB over the heap's range (expect >= " + n * size / 1024 + " KiB)",
                    resident >= n * size);
            boolean intact = true;
            for (int i = 0; i < n; i++) {
                intact &= RawMemory.getByte(ps[i] + size - 1) == (byte) i;
                heap.free(ps[i]);
            }
            long released = heap.releaseMemory();
            long after = KernelView.residentBytes(lo, hi - lo);
            record("heap", "all freed (contents intact: " + intact + "), releaseMemory gave back "
                    + released / 1024 + " KiB: mincore resident " + after / 1024 + " KiB",
                    intact && after < resident / 16);
            heap.checkInvariants();
        }
    }

    private static void check(String call, String what, boolean state, boolean extra, long base, long len, long wantRss) {
        long rss = KernelView.rssBytes(base, len);
        long resident = KernelView.residentBytes(base, len);
        boolean ok = state && extra && rss == wantRss && resident == wantRss;
        record(call, what + ": maps " + KernelView.permsAt(base) + ", pagemap Rss " + rss + " B, mincore "
                + resident + " B (expect " + wantRss + " B)", ok);
    }

    private static void record(String step, String text, boolean ok) {
        if (!ok) {
            failures++;
        }
        say(step + ": " + text + (ok ? " ok" : " FAILED"));
    }

    private static void say(String s) {
        System.out.println("demo: " + s);
    }
}
