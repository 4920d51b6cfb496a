package io.gomem.os;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The kernel's overcommit policy, for tests that need a mapping the kernel refuses. */
public final class Overcommit {
    private Overcommit() {
    }

    /**
     * A length the kernel refuses to map read-write at once, or 0 if it maps any size
     * ({@code vm.overcommit_memory=1}): twice RAM plus swap, in whole GiB. The heuristic policy
     * (0) refuses a private writable mapping larger than RAM plus swap, the strict one (2) any
     * past its commit limit, which is lower. Reserving it (PROT_NONE, MAP_NORESERVE) still works.
     */
    public static long unmappableLength() throws IOException {
        if (Files.readString(Path.of("/proc/sys/vm/overcommit_memory")).trim().equals("1")) {
            return 0;
        }
        long kib = 0;
        for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
            if (line.startsWith("MemTotal:") || line.startsWith("SwapTotal:")) {
                kib += Long.parseLong(line.replaceAll("\\D+", ""));
            }
        }
        return ((2 * kib << 10) + (1L << 30)) & -(1L << 30);
    }
}
