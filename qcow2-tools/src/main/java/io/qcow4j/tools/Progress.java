package io.qcow4j.tools;

import java.io.PrintWriter;

/**
 * qemu-img's {@code -p} progress: "    (12.34/100%)" redrawn in place with '\r', a newline
 * at the end. As qemu-img's, it redraws when the figure moved by more than a minimum step
 * (1% for most commands, 2% for rebase), and always at 0 and 100%.
 */
final class Progress {
    private final PrintWriter out;
    private final boolean enabled;
    private final double minSkip;
    private long total;
    private double shown = -1;

    Progress(PrintWriter out, boolean enabled, long total) {
        this(out, enabled, total, 1.0);
    }

    Progress(PrintWriter out, boolean enabled, long total, double minSkip) {
        this.out = out;
        this.enabled = enabled;
        this.total = total;
        this.minSkip = minSkip;
        update(0);
    }

    void update(long done) {
        if (!enabled) {
            return;
        }
        // an empty job (nothing to copy) stays at 0 until finish() says 100
        double pct = total <= 0 ? 0.0 : Math.min(100.0, done * 100.0 / total);
        if (shown < 0 || Math.abs(pct - shown) > minSkip || (pct == 100.0 && shown < 100.0)) {
            print(pct);
        }
    }

    /** {@code done} of a total that the work itself found (a job's progress listener). */
    void update(long done, long newTotal) {
        total = newTotal;
        update(done);
    }

    void finish() {
        if (enabled) {
            if (shown < 100.0) {
                print(100.0);
            }
            out.print("\n");
            out.flush();
        }
    }

    private void print(double pct) {
        shown = pct;
        out.print("    (" + Output.fixed(pct, 2) + "/100%)\r");
        out.flush();
    }
}
