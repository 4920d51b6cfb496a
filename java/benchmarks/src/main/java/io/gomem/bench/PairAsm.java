package io.gomem.bench;

import io.gomem.GoHeap;

/**
 * The allocate/free pair as C2 compiles it, for {@code asm.sh}: runs each pair until C2 has
 * compiled it (with everything it calls inlined), so that {@code -XX:CompileCommand=print} shows
 * the machine code of the pair alone, which {@code asm.sh} disassembles and scans for
 * {@code lock}-prefixed instructions (JMH's perfasm needs perf hardware events and an hsdis for
 * this JDK, neither of which this machine has).
 *
 * <ul>
 *   <li>{@code heldPair}: {@link GoHeap.Local#allocate(long)} then {@link GoHeap.Local#free(long)},
 *       the owner path (a P the thread holds; the free lands in that P's span);</li>
 *   <li>{@code rawPair}: {@link GoHeap#allocate(long)} then {@link GoHeap#free(long)}, the default
 *       API (one lease per allocation, an atomic free mark).</li>
 * </ul>
 */
public final class PairAsm {
    private PairAsm() {
    }

    static long heldPair(GoHeap.Local p, long size) {
        long a = p.allocate(size);
        p.free(a);
        return a;
    }

    static long rawPair(GoHeap heap, long size) {
        long a = heap.allocate(size);
        heap.free(a);
        return a;
    }

    public static void main(String[] args) {
        long size = args.length > 0 ? Long.parseLong(args[0]) : 16;
        long sum = 0;
        try (GoHeap heap = GoHeap.builder().build(); GoHeap.Local p = heap.local()) {
            for (int i = 0; i < 3_000_000; i++) {
                sum += heldPair(p, size);
                sum += rawPair(heap, size);
            }
        }
        System.out.println("pairs done (" + (sum != 0) + ")");
    }
}
