package io.qcow4j.backup;

import java.util.concurrent.atomic.AtomicBoolean;

/** Progress reports and cancellation of a long operation (backup, restore, verify, prune). */
public final class Progress {
    /** Receives bytes done of a total. */
    @FunctionalInterface
    public interface Listener {
        void progress(long done, long total);
    }

    private final Listener listener;
    private final AtomicBoolean cancelled = new AtomicBoolean();

    public Progress(Listener listener) {
        this.listener = listener;
    }

    public static Progress none() {
        return new Progress((d, t) -> { });
    }

    /** Asks the operation to stop at its next step; it then undoes what it started and fails. */
    public void cancel() {
        cancelled.set(true);
    }

    public boolean isCancelled() {
        return cancelled.get();
    }

    void report(long done, long total) throws BackupException {
        listener.progress(done, total);
        check();
    }

    void check() throws BackupException {
        if (cancelled.get()) {
            throw new Cancelled();
        }
    }

    /** The operation was cancelled. */
    public static final class Cancelled extends BackupException {
        private static final long serialVersionUID = 1L;

        Cancelled() {
            super("cancelled");
        }
    }
}
