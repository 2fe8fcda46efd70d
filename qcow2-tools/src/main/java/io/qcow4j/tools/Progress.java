package io.qcow4j.tools;

import java.io.PrintWriter;

/**
 * qemu-img's {@code -p} progress: "    (12.34/100%)" redrawn in place with '\r', a
 * newline at the end. Redraws at most once per percent so a long copy prints ~100 updates.
 */
final class Progress {
    private final PrintWriter out;
    private final boolean enabled;
    private final long total;
    private double shown = -1;

    Progress(PrintWriter out, boolean enabled, long total) {
        this.out = out;
        this.enabled = enabled;
        this.total = total;
        update(0);
    }

    void update(long done) {
        if (!enabled) {
            return;
        }
        double pct = total <= 0 ? 100.0 : Math.min(100.0, done * 100.0 / total);
        if (shown < 0 || pct - shown >= 1.0 || (pct == 100.0 && shown < 100.0)) {
            shown = pct;
            out.print("    (" + Output.fixed(pct, 2) + "/100%)\r");
            out.flush();
        }
    }

    void finish() {
        if (enabled) {
            update(total);
            out.print("\n");
            out.flush();
        }
    }
}
