package io.gomem.cli;

import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

import java.time.Duration;
import java.util.Locale;

/**
 * Units on the command line and in the output: byte sizes ({@code 256m}, {@code 1g}, {@code 4096}),
 * durations ({@code 8s}, {@code 500ms}), fractions in [0, 1]; picocli converters that refuse
 * anything else with a message picocli puts after the option's name.
 */
final class Units {
    private Units() {
    }

    static final long MIB = 1L << 20;

    /** A positive byte count: a number with an optional k, m, g or t suffix (powers of 1024; "mib", "MB" too). */
    static final class ByteSize implements ITypeConverter<Long> {
        @Override
        public Long convert(String text) {
            String s = text.trim().toLowerCase(Locale.ROOT);
            String digits = s.replaceFirst("(i?b)$", "").replaceFirst("[kmgt]$", "");
            String unit = s.substring(digits.length()).replaceFirst("(i?b)$", "");
            long scale = switch (unit) {
                case "" -> 1;
                case "k" -> 1L << 10;
                case "m" -> 1L << 20;
                case "g" -> 1L << 30;
                case "t" -> 1L << 40;
                default -> throw new TypeConversionException("'" + text + "' is not a size");
            };
            long n;
            try {
                n = Long.parseLong(digits);
            } catch (NumberFormatException e) {
                throw new TypeConversionException("'" + text + "' is not a size such as 256m, 1g or 4096");
            }
            if (n <= 0 || n > Long.MAX_VALUE / scale) {
                throw new TypeConversionException("'" + text + "' must be a positive size such as 256m, 1g or 4096");
            }
            return n * scale;
        }
    }

    /** A positive duration: a number with ms, s or m (default: seconds). */
    static final class Time implements ITypeConverter<Duration> {
        @Override
        public Duration convert(String text) {
            String s = text.trim().toLowerCase(Locale.ROOT);
            long millis;
            try {
                if (s.endsWith("ms")) {
                    millis = Long.parseLong(s.substring(0, s.length() - 2));
                } else if (s.endsWith("m")) {
                    millis = Math.round(Double.parseDouble(s.substring(0, s.length() - 1)) * 60_000);
                } else {
                    millis = Math.round(Double.parseDouble(s.endsWith("s") ? s.substring(0, s.length() - 1) : s) * 1000);
                }
            } catch (NumberFormatException e) {
                throw new TypeConversionException("'" + text + "' is not a duration such as 8s or 500ms");
            }
            if (millis <= 0) {
                throw new TypeConversionException("'" + text + "' must be a positive duration such as 8s or 500ms");
            }
            return Duration.ofMillis(millis);
        }
    }

    /** A fraction between 0 and 1 inclusive. */
    static final class Fraction implements ITypeConverter<Double> {
        @Override
        public Double convert(String text) {
            double f;
            try {
                f = Double.parseDouble(text.trim());
            } catch (NumberFormatException e) {
                throw new TypeConversionException("'" + text + "' is not a number");
            }
            if (!(f >= 0 && f <= 1)) {
                throw new TypeConversionException("'" + text + "' is not between 0 and 1");
            }
            return f;
        }
    }

    /** A byte count for people: "512 B", "64 KiB", "256 MiB", "1.5 GiB". */
    static String bytes(long n) {
        if (n < 1024) {
            return n + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = n;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return (v == Math.rint(v) ? String.format(Locale.ROOT, "%.0f", v) : String.format(Locale.ROOT, "%.1f", v))
                + " " + units[u];
    }

    /** Bytes as MiB with one decimal, for tables and charts. */
    static double mib(long n) {
        return n / (double) MIB;
    }
}
