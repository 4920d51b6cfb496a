package io.gomem.cli;

import java.io.PrintWriter;
import java.util.Locale;

/**
 * Progress of a long task on stderr, shown only once it has taken more than a second. On a
 * terminal: one plain-ASCII bar redrawn in place with carriage returns ({@code churn
 * [#####.....]  50% gomem: regrow}); anywhere else: one plain line each time the stage (the
 * label's part before its first colon) changes. Other output goes through {@link #println},
 * which keeps it off the bar's line.
 */
final class Progress implements AutoCloseable {
    private static final int WIDTH = 30;
    private static final long DELAY_NANOS = 1_000_000_000L;
    private static final long REDRAW_NANOS = 100_000_000L;

    private final PrintWriter err;
    private final String task;
    private final boolean terminal;
    private final long start = System.nanoTime();
    private long drawnAt;
    private int drawnWidth;
    private String label = "";
    private String printedStage = "";
    private double fraction = -1;

    Progress(PrintWriter err, String task, boolean terminal) {
        this.err = err;
        this.task = task;
        this.terminal = terminal;
    }

    /** Sets how far the task is (0 to 1; negative if unknown) and what it is doing ("stage: detail" or "stage"). */
    synchronized void update(double fraction, String label) {
        this.fraction = fraction;
        this.label = label;
        long now = System.nanoTime();
        if (now - start < DELAY_NANOS) {
            return;
        }
        if (!terminal) {
            String stage = label.contains(":") ? label.substring(0, label.indexOf(':')) : label;
            if (!stage.equals(printedStage)) {
                err.println(task + ": " + label + (fraction >= 0 ? String.format(Locale.ROOT, " (%.0f%%)", fraction * 100) : ""));
                err.flush();
                printedStage = stage;
            }
        } else if (now - drawnAt >= REDRAW_NANOS) {
            draw();
            drawnAt = now;
        }
    }

    /** Prints a line of other output, then the bar again. */
    synchronized void println(String line) {
        clear();
        err.println(line);
        if (drawnAt != 0) {
            draw();
        }
        err.flush();
    }

    private void draw() {
        String text;
        if (fraction >= 0) {
            int filled = (int) Math.round(Math.min(1, fraction) * WIDTH);
            text = String.format(Locale.ROOT, "%s [%s%s] %3.0f%% %s", task, "#".repeat(filled), ".".repeat(WIDTH - filled),
                    Math.min(1, fraction) * 100, label);
        } else {
            text = task + ": " + label;
        }
        err.print("\r" + text + " ".repeat(Math.max(0, drawnWidth - text.length())));
        err.flush();
        drawnWidth = text.length();
    }

    private void clear() {
        if (terminal && drawnWidth > 0) {
            err.print("\r" + " ".repeat(drawnWidth) + "\r");
            drawnWidth = 0;
        }
    }

    /** Removes the bar. */
    @Override
    public synchronized void close() {
        clear();
        err.flush();
    }
}
