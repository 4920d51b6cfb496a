package io.gomem.internal;

import java.util.Locale;
import java.util.Map;
import java.util.function.Function;

/**
 * Every gomem option, in one table: a system property {@code gomem.x.y} and an environment
 * variable {@code GOMEM_X_Y} each, the property winning. Values are read once, when a component
 * first asks, and are then constant for the life of the process (components copy them into
 * {@code static final} fields so that a disabled switch costs nothing on hot paths).
 *
 * <p>Owns no mutable state.
 */
public enum Options {
    DEBUG("gomem.debug", "",
            "Comma-separated debug switches: 'sys' prints the OS transitions to stderr, per-span calls"
                    + " (sysUsed, sysUnused) coalesced into one line per run, 'sys=2' every call;"
                    + " 'scavtrace' one line per scavenger cycle (released, retained, goal);"
                    + " 'clobberfree' fills freed objects with 0xdeadbeef; 'efence' gives every object"
                    + " pages of its own and faults them (PROT_NONE) for good on free; 'arenafault' faults"
                    + " a closed arena's chunks and never reuses them. Read once per JVM; free when off."),
    SYS_UNUSED_MODE("gomem.sysUnused", "dontneed",
            "How sysUnused returns pages: 'dontneed' (MADV_DONTNEED, Rss drops at once), 'free'"
                    + " (MADV_FREE, lazily; falls back to dontneed for good on EINVAL), or"
                    + " 'harddecommit' (also removes access: mmap PROT_NONE over the range)."),
    MEMORY_LIMIT("gomem.memoryLimit", "",
            "Soft limit on the heap memory gomem holds Ready (Go's GOMEMLIMIT), e.g. 512m or 2g: the"
                    + " scavenger keeps under it and allocation scavenges synchronously before passing it."
                    + " Empty: a percentage of the cgroup's memory limit if there is one, else none. 'off': none."),
    MEMORY_LIMIT_PERCENT("gomem.memoryLimitPercent", "75",
            "With no gomem.memoryLimit, the soft limit as a percentage of the cgroup memory limit"
                    + " (memory.max, or v1 memory.limit_in_bytes)."),
    HARD_MEMORY_LIMIT("gomem.hardMemoryLimit", "off",
            "Hard limit on Ready heap memory, e.g. 1g: an allocation that cannot fit under it even"
                    + " after scavenging fails with MemoryLimitExceededError. 'off': none."),
    RETAIN_EXTRA_PERCENT("gomem.scavenger.retainExtraPercent", "10",
            "The background scavenger returns free pages until Ready heap memory is at most this"
                    + " percentage above the heap's in-use memory."),
    SCAVENGER_CPU_PERCENT("gomem.scavenger.cpuPercent", "1",
            "CPU budget of the background scavenger, in percent of one CPU (Go aims at 1%)."),
    PROCS("gomem.procs", "0",
            "P slots the heap starts with (Go's GOMAXPROCS; 0: four per available processor)."),
    MAX_PROCS("gomem.maxProcs", "0",
            "The most P slots the heap grows to while threads find every P busy (0: 64 per available processor)."),
    CENTRAL_SHARDS("gomem.centralShards", "0",
            "Sets of central span lists (each P refills from one; 0: four per available processor, at most 64)."),
    HUGE_PAGES("gomem.hugePages", "off",
            "Transparent huge pages for the heap: 'off' (no advice), or 'advise' (MADV_HUGEPAGE on each heap"
                    + " chunk, MADV_NOHUGEPAGE on a chunk the scavenger releases pages of, MADV_HUGEPAGE again once"
                    + " it is dense; the scavenger releases a whole free 2 MiB huge page rather than breaking it, as Go 1.19+)."),
    PHYS_PAGE_SIZE("gomem.physPageSize", "0",
            "The physical page size the OS layer and the heap work in (Go's physPageSize): 0 for the kernel's;"
                    + " a larger power of two simulates a kernel with bigger pages (e.g. 16k or 64k on a 4 KiB"
                    + " kernel): every madvise / mprotect range is then aligned to it. For tests."),
    BACKEND("gomem.backend", "auto",
            "How the OS layer calls the kernel: 'panama' (java.lang.foreign downcalls through the jextract"
                    + " bindings; the jar's JDK 25 part), 'jni' (gomem's own C library, packaged in the jar per platform;"
                    + " any JDK from 17) or 'auto' (Panama on JDK 25 and later, JNI below). Read once per JVM."),
    JNI_LIBRARY("gomem.jni.library", "",
            "Path of a JNI library to load instead of the jar's (built with native/jni/build.sh), for a platform"
                    + " the jar has none for. Empty: the jar's library for this platform."),
    CHECK_INVARIANTS("gomem.checkInvariants", "false",
            "Run every component's checkInvariants() after each slow-path operation (slow; for"
                    + " tests and debugging).");

    private final String property;
    private final String defaultValue;
    private final String doc;

    Options(String property, String defaultValue, String doc) {
        this.property = property;
        this.defaultValue = defaultValue;
        this.doc = doc;
    }

    /** The system property name, e.g. {@code gomem.debug}. */
    public String property() {
        return property;
    }

    /** The environment variable name, e.g. {@code GOMEM_DEBUG}. */
    public String environmentName() {
        return property.replaceAll("([a-z])([A-Z])", "$1_$2").replace('.', '_').toUpperCase(Locale.ROOT);
    }

    public String defaultValue() {
        return defaultValue;
    }

    public String doc() {
        return doc;
    }

    /** The effective value: the property if set, else the environment variable, else the default. */
    public String value() {
        return value(System::getProperty, System.getenv());
    }

    String value(Function<String, String> properties, Map<String, String> environment) {
        String v = properties.apply(property);
        if (v == null) {
            v = environment.get(environmentName());
        }
        return v == null ? defaultValue : v.trim();
    }

    public boolean booleanValue() {
        String v = value().toLowerCase(Locale.ROOT);
        return switch (v) {
            case "true", "1", "yes", "on" -> true;
            case "false", "0", "no", "off", "" -> false;
            default -> throw refused(v, "expected true or false");
        };
    }

    /**
     * The value as a byte count of at least {@code min}: a plain number, or with a suffix k, m, g,
     * t (binary multiples); {@code off}, {@code none} or empty gives {@code ifOff}. Anything else
     * is refused with an IllegalArgumentException naming the property, its variable, the value
     * and the rule.
     */
    public long bytesValue(long min, long ifOff) {
        return bytesValue(System::getProperty, System.getenv(), min, ifOff);
    }

    long bytesValue(Function<String, String> properties, Map<String, String> environment, long min, long ifOff) {
        String v = value(properties, environment);
        String t = v.trim().toLowerCase(Locale.ROOT);
        if (t.isEmpty() || t.equals("off") || t.equals("none")) {
            return ifOff;
        }
        long n = parseBytes(t);
        if (n < min) {
            throw refused(v, "expected a byte count of at least " + min + " (such as 536870912, 512m or 2g), or 'off' for none");
        }
        return n;
    }

    /** A byte count such as 4096, 512m or 2g (lower case, trimmed); -1 if it is none. */
    static long parseBytes(String t) {
        if (t.isEmpty()) {
            return -1;
        }
        int shift = switch (t.charAt(t.length() - 1)) {
            case 'k' -> 10;
            case 'm' -> 20;
            case 'g' -> 30;
            case 't' -> 40;
            default -> 0;
        };
        String digits = shift == 0 ? t : t.substring(0, t.length() - 1);
        if (digits.endsWith("i") || digits.endsWith("b")) {
            digits = digits.substring(0, digits.length() - 1);
        }
        try {
            long n = Long.parseLong(digits);
            return n < 0 || n > (Long.MAX_VALUE >> shift) ? -1 : n << shift;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** The value as an int in [min, max]; anything else is refused as {@link #bytesValue} says. */
    public int intValue(int min, int max) {
        return intValue(System::getProperty, System.getenv(), min, max);
    }

    int intValue(Function<String, String> properties, Map<String, String> environment, int min, int max) {
        String v = value(properties, environment);
        try {
            int n = Integer.parseInt(v.trim());
            if (n >= min && n <= max) {
                return n;
            }
        } catch (NumberFormatException ignored) {
            // refused below
        }
        throw refused(v, "expected a whole number from " + min + " to " + max);
    }

    /**
     * The error for a bad value: names the property, its environment variable, the value and the
     * rule, e.g. {@code gomem.memoryLimit=0 (system property gomem.memoryLimit or environment
     * variable GOMEM_MEMORY_LIMIT): expected a byte count of at least 1 ...}.
     */
    public IllegalArgumentException refused(String value, String rule) {
        return new IllegalArgumentException(property + "=" + value + " (system property " + property
                + " or environment variable " + environmentName() + "): " + rule);
    }

    /** True if the comma-separated {@link #DEBUG} value names {@code flag} (alone or with a level, {@code flag=N}). */
    public static boolean debugFlag(String flag) {
        return debugLevel(flag) > 0;
    }

    /**
     * The level of a {@link #DEBUG} switch, as GODEBUG levels go: 0 if absent, 1 for {@code flag}
     * alone, N for {@code flag=N}; IllegalArgumentException for a level that is not a number 0–9.
     */
    public static int debugLevel(String flag) {
        return debugLevel(DEBUG.value(), flag);
    }

    static int debugLevel(String value, String flag) {
        int level = 0;
        for (String f : value.split(",")) {
            String t = f.trim();
            int eq = t.indexOf('=');
            String name = eq < 0 ? t : t.substring(0, eq).trim();
            if (!name.equalsIgnoreCase(flag)) {
                continue;
            }
            if (eq < 0) {
                level = 1;
                continue;
            }
            String n = t.substring(eq + 1).trim();
            if (!n.matches("[0-9]")) {
                throw DEBUG.refused(value, "the level of '" + flag + "' must be a number from 0 to 9, not '" + n + "'");
            }
            level = Integer.parseInt(n);
        }
        return level;
    }

    /** One line per option with its effective value, for a debug-level start-up message. */
    public static String describeEffective() {
        StringBuilder sb = new StringBuilder("gomem options:");
        for (Options o : values()) {
            sb.append("\n  ").append(o.property).append(" (").append(o.environmentName())
                    .append(") = '").append(o.value()).append("' [default '")
                    .append(o.defaultValue).append("']: ").append(o.doc);
        }
        return sb.toString();
    }
}
