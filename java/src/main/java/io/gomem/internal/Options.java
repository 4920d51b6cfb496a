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
            "Comma-separated debug switches: 'sys' prints one line per OS transition to stderr."),
    SYS_UNUSED_MODE("gomem.sysUnused", "dontneed",
            "How sysUnused returns pages: 'dontneed' (MADV_DONTNEED, Rss drops at once), 'free'"
                    + " (MADV_FREE, lazily; falls back to dontneed for good on EINVAL), or"
                    + " 'harddecommit' (also removes access: mmap PROT_NONE over the range)."),
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
            default -> throw new IllegalArgumentException(
                    property + "=" + v + ": expected true or false");
        };
    }

    /** True if the comma-separated {@link #DEBUG} value names {@code flag}. */
    public static boolean debugFlag(String flag) {
        for (String f : DEBUG.value().split(",")) {
            if (f.trim().equalsIgnoreCase(flag)) {
                return true;
            }
        }
        return false;
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
