package io.qcow4j.tools;

import io.qcow4j.bitmaps.Chain;
import io.qcow4j.bitmaps.Jobs;
import java.io.IOException;

/**
 * The steps the chain commands (commit, stream, rebase, checkpoint, overlay) share: working
 * on an open chain and closing it, and wording a failed operation as qemu-img does,
 * {@code "<what><reason>"} with exit code 1.
 */
final class ChainOps {
    private ChainOps() {
    }

    /** Work on an open chain. */
    interface Work {
        void run(Chain chain) throws IOException;
    }

    /** Work on an open chain that yields a result. */
    interface Query<T> {
        T apply(Chain chain) throws IOException;
    }

    /** An operation whose failure {@link #guard} words. */
    interface Action {
        void run() throws IOException;
    }

    /** A job of {@link Jobs}, given the chain's jobs with the progress bar attached. */
    interface Job {
        void run(Jobs jobs) throws IOException;
    }

    /**
     * Runs {@code work} on {@code chain}, then closes the chain. A failure to close is the
     * command's failure; when the work itself fails, the chain is closed quietly and the
     * work's failure stands.
     */
    static void run(Chain chain, Work work) throws IOException {
        apply(chain, c -> {
            work.run(c);
            return null;
        });
    }

    /** As {@link #run}, returning what {@code query} returns. */
    static <T> T apply(Chain chain, Query<T> query) throws IOException {
        Chain open = chain;
        try {
            T result = query.apply(open);
            Chain done = open;
            open = null;
            done.close();
            return result;
        } finally {
            Chains.closeQuietly(open);
        }
    }

    /** Runs {@code action}; its failure becomes {@code "<what><reason>"}, exit code 1. */
    static void guard(String what, Action action) {
        try {
            action.run();
        } catch (IOException | RuntimeException e) {
            throw new CliException(what + Images.reason(e), 1, e);
        }
    }

    /** Runs {@code job} on the chain's jobs reporting to {@code bar}, failing as {@link #guard} does; then finishes the bar. */
    static void job(Chain chain, Progress bar, String what, Job job) {
        guard(what, () -> job.run(chain.jobs().onProgress(bar::update)));
        bar.finish();
    }
}
