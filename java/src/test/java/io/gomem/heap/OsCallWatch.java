package io.gomem.heap;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Watches every system call the OS layer makes, in any heap, and which of the named locks the
 * calling thread held during it. The OS layer logs each call at TRACE (JUL's FINER) on the
 * calling thread, inside the call and before it returns, so what the thread holds then is what
 * it held across the system call. Install for a test, close after.
 */
final class OsCallWatch implements AutoCloseable {
    /** One system call: its name ({@code sysUnused}, ...), its log line, its thread and the named locks that thread held. */
    record Call(String name, String line, String thread, String phase, List<String> held) {
    }

    private final Logger logger = Logger.getLogger("io.gomem.os"); // the OS layer's System.Logger, through JUL
    private final Level level;
    private final boolean parents;
    private final Map<String, BooleanSupplier> locks;
    final List<Call> calls = new CopyOnWriteArrayList<>();
    /** What the test is doing now, recorded with each call. */
    volatile String phase = "";

    private final Handler handler = new Handler() {
        @Override
        public void publish(LogRecord r) {
            if (r.getLevel() != Level.FINER) {
                return; // DEBUG lines: coalesced summaries, printed by whichever call comes next
            }
            String line = r.getMessage();
            List<String> held = new ArrayList<>();
            locks.forEach((name, isHeld) -> {
                if (isHeld.getAsBoolean()) {
                    held.add(name);
                }
            });
            calls.add(new Call(line.substring(0, line.indexOf(' ')), line, Thread.currentThread().getName(), phase, held));
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };

    /** Watches, naming {@code locks} (name → held by the calling thread). */
    OsCallWatch(Map<String, BooleanSupplier> locks) {
        this.locks = locks;
        this.level = logger.getLevel();
        this.parents = logger.getUseParentHandlers();
        logger.setUseParentHandlers(false);
        logger.addHandler(handler);
        logger.setLevel(Level.FINER);
    }

    /** The heap lock of {@code heap}. */
    static OsCallWatch of(MHeap heap) {
        return new OsCallWatch(Map.of("heap lock", heap.lock::isHeldByCurrentThread));
    }

    /** The heap lock of {@code m} and the lock of each of its centrals. */
    static OsCallWatch of(Malloc m) {
        Map<String, BooleanSupplier> locks = new LinkedHashMap<>();
        locks.put("heap lock", m.heap.lock::isHeldByCurrentThread);
        for (MCentral c : m.central) {
            if (c != null) {
                locks.put("central " + c.spanClass + "/" + c.shard, c::isHeldByCurrentThread);
            }
        }
        return new OsCallWatch(locks);
    }

    /** The calls named {@code name}. */
    List<Call> named(String name) {
        return calls.stream().filter(c -> c.name().equals(name)).toList();
    }

    /** The calls made while the calling thread held any of the named locks. */
    List<Call> underALock() {
        return calls.stream().filter(c -> !c.held().isEmpty()).toList();
    }

    @Override
    public void close() {
        logger.removeHandler(handler);
        logger.setLevel(level);
        logger.setUseParentHandlers(parents);
    }
}
