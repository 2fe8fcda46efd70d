package io.qcow4j.testing;

import java.nio.file.Path;

/**
 * A seeded sequence of operations on image files, for the reliability harnesses: power-loss
 * replay, SIGKILL trials and fault injection run the same scenarios. The operations are
 * planned from the seed alone (two JVMs with one seed plan the same), so a parent can
 * verify what a child ran. {@link #run} reports each operation as it begins and when it
 * returned; {@link #verify} judges the files a crash (or a failure) left, given how many
 * operations must have survived and which one was running.
 */
public abstract class Scenario {
    /** Where a run reports its operations. */
    public interface Steps {
        void begin(int op);

        void ack(int op);
    }

    public static final Steps QUIET = new Steps() {
        @Override
        public void begin(int op) {
        }

        @Override
        public void ack(int op) {
        }
    };

    protected final long seed;

    protected Scenario(long seed) {
        this.seed = seed;
    }

    public abstract String name();

    public long seed() {
        return seed;
    }

    /** Creates the files the operations start from in {@code dir}, closed and flushed. */
    public abstract void prepare(Path dir) throws Exception;

    /** Runs the operations on the files of {@code dir}; an I/O failure propagates. */
    public abstract void run(Path dir, Steps steps) throws Exception;

    /**
     * Checks the files in {@code dir} after a crash or failure: operations {@code 0..durable-1}
     * must show, operation {@code inflight} (or {@link #operations()}: none) may show in part,
     * those between only may. Throws an AssertionError saying what is wrong.
     */
    public abstract void verify(Path dir, int durable, int inflight) throws Exception;

    /** How many operations {@link #run} performs. */
    public abstract int operations();

    /** Whether operation {@code op} makes everything acknowledged before it durable (a flush, a close). */
    public abstract boolean isBarrier(int op);

    @Override
    public String toString() {
        return name() + " (seed " + seed + ")";
    }
}
