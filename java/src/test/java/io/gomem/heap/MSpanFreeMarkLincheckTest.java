package io.gomem.heap;

import org.jetbrains.kotlinx.lincheck.Actor;
import org.jetbrains.kotlinx.lincheck.execution.ExecutionScenario;
import org.jetbrains.lincheck.datastructures.IntGen;
import org.jetbrains.lincheck.datastructures.ManagedStrategyGuarantee;
import org.jetbrains.lincheck.datastructures.ManagedStrategyGuaranteeKt;
import org.jetbrains.lincheck.datastructures.ModelCheckingOptions;
import org.jetbrains.lincheck.datastructures.Operation;
import org.jetbrains.lincheck.datastructures.Param;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

import java.util.Arrays;
import java.util.List;

/**
 * The free marks ({@link MSpan#markFree}, {@link MSpan#setMark}, {@link MSpan#sweep}) under
 * Lincheck's model checker: it runs small scenarios of operations from several threads, explores
 * their interleavings deterministically (switching threads at every shared read or write, so it
 * finds races on 2 cores as on 64), and checks that every outcome is one that the operations
 * could have had run one at a time in some order consistent with real time (linearizability)
 * against a sequential model written here.
 *
 * <p>The span is of size class 26 (512 B, 16 slots, one mark word), not the 8 B class (1024
 * slots): the free path is the same for every class, and the sweep's loops over 16 slots keep
 * each explored interleaving short. Slots 0 to 5 are allocated before each scenario; 6 and up
 * are not.
 *
 * <p>The exception builders {@code doubleFree} and {@code notLive},
 * which only read the immutable slot size, are left out of the exploration to keep it small.
 *
 * <p>Runs in its own JVM (see the {@code lincheck} execution in pom.xml): Lincheck attaches a
 * Java agent that rewrites loaded classes.
 */
@Tag("lincheck")
public class MSpanFreeMarkLincheckTest {
    static final long BASE = 0x7f00_0000_0000L;
    static final int CLASS = 26;
    static final long SIZE = SizeClasses.classSize(CLASS);
    static final int NELEMS = SizeClasses.classObjects(CLASS);
    /** Slots allocated before each scenario: 0 to LIVE - 1. */
    static final int LIVE = 6;

    static MSpan span() {
        MSpan s = new MSpan();
        s.initSmall(BASE, SizeClasses.classPages(CLASS), SizeClasses.spanClass(CLASS, true), CLASS, false);
        for (int i = 0; i < LIVE; i++) {
            s.alloc();
        }
        return s;
    }

    /** A free's outcome: "freed", "double free" or "not live" (never allocated, or reclaimed). */
    static String free(MSpan s, int slot) {
        try {
            s.markFree(slot, BASE + slot * SIZE);
            return "freed";
        } catch (IllegalStateException e) {
            return e.getMessage().startsWith("double free") ? "double free" : "not live";
        }
    }

    static int slotOf(long p) {
        return p == 0 ? -1 : (int) ((p - BASE) / SIZE);
    }

    static ManagedStrategyGuarantee exceptionBuildersAreLocal() {
        return ManagedStrategyGuaranteeKt.forClasses("io.gomem.heap.MSpan").methods("doubleFree", "notLive").ignore();
    }

    /** An actor of {@code type}'s method {@code name} with int arguments. */
    static Actor actor(Class<?> type, String name, int... args) throws NoSuchMethodException {
        Class<?>[] types = new Class<?>[args.length];
        Arrays.fill(types, int.class);
        return new Actor(type.getMethod(name, types), Arrays.stream(args).boxed().map(a -> (Object) a).toList());
    }

    /** The sequential model of one span's slots: each is free, allocated, or allocated with a pending free. */
    public static class SlotsModel {
        static final int FREE = 0, ALLOCATED = 1, PENDING = 2;
        final int[] state = new int[NELEMS];
        int freeIndex = LIVE;

        public SlotsModel() {
            Arrays.fill(state, 0, LIVE, ALLOCATED);
        }

        String free(int slot) {
            if (state[slot] == ALLOCATED) {
                state[slot] = PENDING;
                return "freed";
            }
            return state[slot] == PENDING ? "double free" : "not live";
        }

        boolean pending(int slot) {
            return state[slot] == PENDING;
        }

        /** The lowest slot at or above the free index that is not allocated (pending frees wait for a sweep). */
        int alloc() {
            for (int j = freeIndex; j < NELEMS; j++) {
                if (state[j] == FREE) {
                    state[j] = ALLOCATED;
                    freeIndex = j + 1;
                    return j;
                }
            }
            freeIndex = NELEMS;
            return -1;
        }

        /** Reclaims every pending free; allocation starts again from slot 0. */
        int sweep() {
            int n = 0;
            for (int j = 0; j < NELEMS; j++) {
                if (state[j] == PENDING) {
                    state[j] = FREE;
                    n++;
                }
            }
            freeIndex = 0;
            return n;
        }
    }

    // ───────────────────────────── 1. the atomic step: racing marks of one slot ─────────────────────────────

    /**
     * {@link MSpan#setMark}, the step of a free that passed the checks, from four threads on
     * slots 3 to 5: whatever the interleaving, exactly one mark of a slot wins, and no slot's
     * mark changes but the one marked. This is the race that broke the two-bit counts (dd0745f):
     * four frees of one slot past the check, each adding one, carried into the next slot's mark.
     */
    @Param(name = "slot", gen = IntGen.class, conf = "3:5")
    public static class Marks {
        private final MSpan s = span();

        @Operation
        public boolean mark(@Param(name = "slot") int slot) {
            return s.setMark(slot);
        }

        @Operation
        public boolean pending(@Param(name = "slot") int slot) {
            return s.isFreePending(slot);
        }
    }

    public static class MarksModel {
        private final SlotsModel m = new SlotsModel();

        public boolean mark(int slot) {
            return m.free(slot).equals("freed");
        }

        public boolean pending(int slot) {
            return m.pending(slot);
        }
    }

    @Test
    void racingMarksOfOneSlotSetOneMarkAndNoOther() throws Exception {
        Actor mark4 = actor(Marks.class, "mark", 4);
        new ModelCheckingOptions()
                .addCustomScenario(new ExecutionScenario(List.of(),
                        List.of(List.of(mark4), List.of(mark4), List.of(mark4), List.of(mark4)),
                        List.of(actor(Marks.class, "pending", 3), actor(Marks.class, "pending", 4),
                                actor(Marks.class, "pending", 5), actor(Marks.class, "mark", 5)),
                        null))
                .iterations(10)
                .invocationsPerIteration(300)
                .threads(4)
                .actorsPerThread(1)
                .actorsBefore(0)
                .actorsAfter(3)
                .sequentialSpecification(MarksModel.class)
                .check(Marks.class);
    }

    // ───────────────────────────── 2. frees from any thread, the owner allocating ─────────────────────────────

    /**
     * The whole free path ({@link MSpan#markFree}: the allocated check, the mark check, the
     * exchange) from three threads on slots 0 to 7, racing each other and the owner's
     * allocations: the first free of an allocated slot succeeds, later ones are double frees, a
     * free of a slot never handed out is refused, and no free reaches another slot.
     */
    @Param(name = "slot", gen = IntGen.class, conf = "0:7")
    public static class Frees {
        private final MSpan s = span();

        @Operation
        public String free(@Param(name = "slot") int slot) {
            return MSpanFreeMarkLincheckTest.free(s, slot);
        }

        @Operation
        public boolean pending(@Param(name = "slot") int slot) {
            return s.isFreePending(slot);
        }

        @Operation(nonParallelGroup = "owner")
        public int alloc() {
            return slotOf(s.alloc());
        }
    }

    public static class FreesModel {
        private final SlotsModel m = new SlotsModel();

        public String free(int slot) {
            return m.free(slot);
        }

        public boolean pending(int slot) {
            return m.pending(slot);
        }

        public int alloc() {
            return m.alloc();
        }
    }

    @Test
    void freesFromAnyThreadAreLinearizable() throws Exception {
        Actor free4 = actor(Frees.class, "free", 4);
        new ModelCheckingOptions()
                .addCustomScenario(new ExecutionScenario(List.of(),
                        List.of(List.of(free4), List.of(free4), List.of(free4), List.of(free4)),
                        List.of(actor(Frees.class, "pending", 3), actor(Frees.class, "pending", 4),
                                actor(Frees.class, "pending", 5), actor(Frees.class, "free", 5)),
                        null))
                .iterations(10)
                .invocationsPerIteration(200)
                .threads(3)
                .actorsPerThread(2)
                .actorsBefore(1)
                .actorsAfter(2)
                .sequentialSpecification(FreesModel.class)
                .addGuarantee(exceptionBuildersAreLocal())
                .check(Frees.class);
    }

    /**
     * Four frees of one slot through the whole free path, explored deep enough for the two-bit
     * design's carry: all four must pass the check before the first mark and then add before any
     * takes its extra one back, five thread switches, where the check above stops at far fewer.
     * To get there the exploration is cut down to what this scenario can change: no switch inside
     * {@code isAllocated} (the scenario has no owner operation, so the free index and alloc bits
     * stay as they are) and none inside dd0745f's {@code undoMark} (a no-op guarantee for the
     * current code). Against dd0745f's MSpan it fails after about 20 s of exploration:
     * free(4) double free / freed / double free / double free, then pending(4) false, pending(5)
     * true, free(5) double free. On the current MSpan it runs its 300,000 invocations, 75 to 100 s
     * on 2 CPUs: opt-in, with {@code -Dgomem.test.lincheck.deep=true}.
     */
    @Test
    @EnabledIfSystemProperty(named = "gomem.test.lincheck.deep", matches = "true")
    void fourFreesOfOneSlotThroughTheWholePathDeep() throws Exception {
        Actor free4 = actor(Frees.class, "free", 4);
        new ModelCheckingOptions()
                .addCustomScenario(new ExecutionScenario(List.of(),
                        List.of(List.of(free4), List.of(free4), List.of(free4), List.of(free4)),
                        List.of(actor(Frees.class, "pending", 4), actor(Frees.class, "pending", 5),
                                actor(Frees.class, "free", 5)),
                        null))
                .iterations(0)
                .invocationsPerIteration(300_000)
                .sequentialSpecification(FreesModel.class)
                .addGuarantee(exceptionBuildersAreLocal())
                .addGuarantee(ManagedStrategyGuaranteeKt.forClasses("io.gomem.heap.MSpan").methods("isAllocated").ignore())
                .addGuarantee(ManagedStrategyGuaranteeKt.forClasses("io.gomem.heap.MSpan").methods("undoMark").treatAsAtomic())
                .check(Frees.class);
    }

    // ───────────────────────────── 3. frees racing the owner's sweep ─────────────────────────────

    /**
     * Frees of slots 0 to 7 (each at most once) from two threads while the owner sweeps and
     * allocates: a sweep reclaims exactly the frees it saw, a free that lands while it runs is
     * kept for the next sweep, and allocation after a sweep hands the reclaimed slots out again
     * lowest first.
     *
     * <p>Each slot is freed at most once here: a second free of an object racing the sweep that
     * reclaims the first is a documented blind spot (it may succeed and leave a mark that frees
     * the slot's next object; see {@link MSpan#markFree}), so a model in which it always fails
     * would not fit. {@code pending} is left out too: the sweep takes a word of marks before it
     * updates the alloc bits, so a read of one mark racing it is not linearizable with the sweep
     * (with one byte per mark, Lincheck reported this at once). That is no bug: the only reader
     * of one mark outside the owner is {@code usableSize}, which refuses a freed object whether
     * it sees the mark or the reclaimed slot.
     */
    public static class FreesAndSweeps {
        private final MSpan s = span();

        @Operation(runOnce = true) public String free0() { return free(s, 0); }
        @Operation(runOnce = true) public String free1() { return free(s, 1); }
        @Operation(runOnce = true) public String free2() { return free(s, 2); }
        @Operation(runOnce = true) public String free3() { return free(s, 3); }
        @Operation(runOnce = true) public String free4() { return free(s, 4); }
        @Operation(runOnce = true) public String free5() { return free(s, 5); }
        @Operation(runOnce = true) public String free6() { return free(s, 6); }
        @Operation(runOnce = true) public String free7() { return free(s, 7); }

        @Operation(nonParallelGroup = "owner")
        public int sweep() {
            return s.sweep();
        }

        @Operation(nonParallelGroup = "owner")
        public int alloc() {
            return slotOf(s.alloc());
        }
    }

    public static class FreesAndSweepsModel {
        private final SlotsModel m = new SlotsModel();

        public String free0() { return m.free(0); }
        public String free1() { return m.free(1); }
        public String free2() { return m.free(2); }
        public String free3() { return m.free(3); }
        public String free4() { return m.free(4); }
        public String free5() { return m.free(5); }
        public String free6() { return m.free(6); }
        public String free7() { return m.free(7); }

        public int sweep() {
            return m.sweep();
        }

        public int alloc() {
            return m.alloc();
        }
    }

    @Test
    void freesRacingTheSweepAreReclaimedOnceByThisSweepOrTheNext() throws Exception {
        Class<?> t = FreesAndSweeps.class;
        new ModelCheckingOptions()
                .addCustomScenario(new ExecutionScenario(List.of(actor(t, "free2")),
                        List.of(List.of(actor(t, "sweep"), actor(t, "alloc"), actor(t, "sweep")),
                                List.of(actor(t, "free3"), actor(t, "free1")),
                                List.of(actor(t, "free4"), actor(t, "free0"))),
                        List.of(actor(t, "sweep"), actor(t, "alloc"), actor(t, "alloc")),
                        null))
                .iterations(10)
                .invocationsPerIteration(300)
                .threads(3)
                .actorsPerThread(2)
                .actorsBefore(1)
                .actorsAfter(2)
                .sequentialSpecification(FreesAndSweepsModel.class)
                .addGuarantee(exceptionBuildersAreLocal())
                .check(t);
    }
}
