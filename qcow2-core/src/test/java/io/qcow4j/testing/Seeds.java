package io.qcow4j.testing;

/**
 * Seeds of the reliability tests. The default suite uses a fixed seed, so CI runs the same
 * cases every time; {@code -Dqcow4j.seed=N} shifts it (to replay a failure or explore), and
 * the long mode ({@code -Dqcow4j.long=true}) without a seed draws a new one each run. The
 * seed is printed, and every failure message carries it.
 */
public final class Seeds {
    private Seeds() {
    }

    /** Whether the long mode runs ({@code -Dqcow4j.long=true}). */
    public static boolean longMode() {
        return Boolean.getBoolean("qcow4j.long");
    }

    /** The seed of a test whose fixed default is {@code fixed}. */
    public static long of(long fixed) {
        // the parent pom passes qcow4j.seed=0 when none is given
        Long given = Long.getLong("qcow4j.seed");
        if (given != null && given != 0) {
            return fixed + given;
        }
        return longMode() ? fixed + (System.nanoTime() ^ Long.rotateLeft(System.currentTimeMillis(), 20)) % 1_000_000_007L : fixed;
    }
}
