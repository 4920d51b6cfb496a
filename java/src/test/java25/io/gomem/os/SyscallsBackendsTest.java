package io.gomem.os;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Both OS backends on one JVM (JDK 25: the jar's part with Panama), checked against the kernel and against
 * each other: a range mapped through one is seen by the kernel ({@code /proc/self/maps},
 * pagemap) and through the other's mincore; each call's failures give the same errno through
 * both. The rest of the suite runs once per backend (the build's {@code jni-backend} execution).
 */
class SyscallsBackendsTest {
    static final long PAGE = Syscalls.OS_PAGE_SIZE;
    static final int RW = Syscalls.PROT_READ | Syscalls.PROT_WRITE;
    static final int ANON = Syscalls.MAP_PRIVATE | Syscalls.MAP_ANONYMOUS;

    static List<Syscalls.Backend> both() {
        return List.of(Syscalls.choose("panama"), Syscalls.choose("jni"));
    }

    @SuppressWarnings("restricted")
    static void touch(long addr, long len) {
        MemorySegment s = MemorySegment.ofAddress(addr).reinterpret(len);
        for (long o = 0; o < len; o += PAGE) {
            s.set(ValueLayout.JAVA_BYTE, o, (byte) 1);
        }
    }

    @Test
    void everyCallThroughOneIsSeenByTheKernelAndTheOther() {
        for (Syscalls.Backend a : both()) {
            Syscalls.Backend b = a.name().equals("jni") ? Syscalls.choose("panama") : Syscalls.choose("jni");
            long len = 64 * PAGE;
            long addr = a.mmap(0, len, RW, ANON);
            assertTrue(addr > 0 && addr % PAGE == 0, a.name() + " mmap: " + addr);
            try {
                List<KernelView.Mapping> maps = KernelView.mappings(addr, len);
                assertTrue(!maps.isEmpty() && maps.get(0).perms().startsWith("rw"), a.name() + ": " + maps);
                assertEquals(0, KernelView.rssBytes(addr, len), a.name() + ": fresh pages are not resident");
                touch(addr, 16 * PAGE);
                assertEquals(16 * PAGE, KernelView.rssBytes(addr, len), a.name());
                byte[] vec = new byte[64];
                assertEquals(0, b.mincore(addr, len, vec));
                int resident = 0;
                for (int i = 0; i < 64; i++) {
                    resident += vec[i] & 1;
                    assertEquals(i < 16 ? 1 : 0, vec[i] & 1, b.name() + " mincore, page " + i + " of a " + a.name() + " mapping");
                }
                assertEquals(16, resident);

                assertEquals(0, a.madvise(addr, 8 * PAGE, Syscalls.MADV_DONTNEED));
                assertEquals(8 * PAGE, KernelView.rssBytes(addr, len), a.name() + " madvise(DONTNEED) of 8 pages");
                assertEquals(0, b.mincore(addr, 16 * PAGE, vec));
                assertEquals(0, vec[0] & 1, b.name() + " sees page 0 released through " + a.name());

                assertEquals(0, a.mprotect(addr, PAGE, Syscalls.PROT_NONE));
                assertTrue(KernelView.permsAt(addr).startsWith("---"), a.name() + " mprotect: " + KernelView.permsAt(addr));
                assertTrue(KernelView.permsAt(addr + PAGE).startsWith("rw"), KernelView.permsAt(addr + PAGE));
            } finally {
                List<KernelView.Mapping> before = KernelView.mappings(addr, len);
                assertEquals(0, a.munmap(addr, len));
                assertEquals(List.of(), KernelView.survivors(before, addr, len), a.name() + " munmap left a mapping");
            }
            int errno = b.mincore(addr, len, new byte[64]);
            assertTrue(errno == Syscalls.ENOMEM || KernelView.mappings(addr, len).size() > 0,
                    b.name() + " mincore of the range " + a.name() + " unmapped: ENOMEM unless the JVM mapped it since: " + errno);
        }
    }

    /** Each failure the OS layer can meet, through each backend: the same errno and the same text. */
    @Test
    void failuresCarryTheSameErrnoThroughBoth() {
        long len = 4 * PAGE;
        Syscalls.Backend panama = Syscalls.choose("panama");
        Syscalls.Backend jni = Syscalls.choose("jni");
        long addr = panama.mmap(0, len, RW, ANON);
        try {
            List<String> seen = new ArrayList<>();
            for (Syscalls.Backend x : both()) {
                seen.add(x.name() + ":"
                        + " mmap(len 0)=" + x.mmap(0, 0, RW, ANON)
                        + " mmap(2^60)=" + x.mmap(0, 1L << 60, RW, ANON)
                        + " mmap(fixed, unaligned)=" + x.mmap(addr + 1, PAGE, RW, ANON | Syscalls.MAP_FIXED)
                        + " munmap(unaligned)=" + x.munmap(addr + 1, PAGE)
                        + " madvise(bad advice)=" + x.madvise(addr, PAGE, 12345)
                        + " madvise(unaligned)=" + x.madvise(addr + 1, PAGE, Syscalls.MADV_DONTNEED)
                        + " mprotect(bad prot)=" + x.mprotect(addr, PAGE, 0x7fff0000)
                        + " mincore(unaligned)=" + x.mincore(addr + 1, PAGE, new byte[2])
                        + " strerror(ENOMEM)=" + x.strerror(Syscalls.ENOMEM));
            }
            assertEquals(seen.get(0).substring("panama:".length()), seen.get(1).substring("jni:".length()), seen.toString());
            assertEquals(-Syscalls.EINVAL, jni.mmap(0, 0, RW, ANON));
            assertEquals(-Syscalls.ENOMEM, jni.mmap(0, 1L << 60, RW, ANON));
            assertEquals(Syscalls.EINVAL, jni.madvise(addr, PAGE, 12345));
            assertEquals(Syscalls.EINVAL, jni.mincore(addr + 1, PAGE, new byte[2]));
            assertEquals("Cannot allocate memory", jni.strerror(Syscalls.ENOMEM));
        } finally {
            assertEquals(0, jni.munmap(addr, len));
        }
    }

    @Test
    void badBackendValuesAreRefusedWithTheRule() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Syscalls.choose("ffi"));
        assertTrue(e.getMessage().contains("gomem.backend=ffi") && e.getMessage().contains("'auto', 'panama' or 'jni'"),
                e.getMessage());
        assertEquals("jni", Syscalls.choose(" JNI ").name());
        assertEquals("panama", Syscalls.choose("").name());
    }

    @Test
    void platformsAreNamedAsTheJarsFolders() {
        assertEquals("linux-x86_64", JniSyscalls.platform("Linux", "amd64"));
        assertEquals("linux-x86_64", JniSyscalls.platform("Linux", "x86_64"));
        assertEquals("linux-aarch64", JniSyscalls.platform("Linux", "aarch64"));
        assertEquals("mac_os_x-aarch64", JniSyscalls.platform("Mac OS X", "aarch64"));
        assertEquals("linux-riscv64", JniSyscalls.platform("Linux", "riscv64"));
        assertTrue(JniSyscalls.packaged().contains(JniSyscalls.platform(System.getProperty("os.name"),
                System.getProperty("os.arch"))), "the build packages this machine's platform: " + JniSyscalls.packaged());
        String m = JniSyscalls.noLibrary("linux-riscv64", List.of("linux-x86_64")).getMessage();
        assertTrue(m.contains("no native library for linux-riscv64") && m.contains("it has: linux-x86_64")
                && m.contains("gomem.jni.library="), m);
    }
}
