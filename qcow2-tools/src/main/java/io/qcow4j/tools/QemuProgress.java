package io.qcow4j.tools;

import java.io.PrintWriter;

/**
 * qemu-img's progress state as its commands drive it directly (amend): figures in float
 * arithmetic, redrawn when they moved by more than the minimum step, and always at 0 and
 * 100 (so 100 may be drawn twice); {@link #end} prints the newline, even when nothing was
 * drawn. {@link Progress} is the simpler form the copying commands use.
 */
final class QemuProgress {
    private final PrintWriter out;
    private final boolean enabled;
    private final float minSkip;
    private float current;
    private float lastPrint;

    QemuProgress(PrintWriter out, boolean enabled, float minSkip) {
        this.out = out;
        this.enabled = enabled;
        this.minSkip = minSkip;
    }

    /** qemu_progress_print: {@code max} 0 sets the figure, else adds {@code delta}% of {@code max}. */
    void print(float delta, int max) {
        float now = max == 0 ? delta : current + delta / 100 * max;
        if (now > lastPrint + minSkip || now < lastPrint - minSkip || now == 100 || now == 0) {
            lastPrint = now;
            current = now;
            if (enabled) {
                out.print("    (" + Output.fixed(current, 2) + "/100%)\r");
                out.flush();
            }
        }
    }

    /** A status callback's {@code done} of {@code total}, as qemu-img amend turns it into a figure. */
    void status(long done, long total) {
        print(100f * done / total, 0);
    }

    void end() {
        if (enabled) {
            out.print("\n");
            out.flush();
        }
    }
}
