package io.qcow4j.tools;

import io.qcow4j.backup.Progress;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * What the backup commands share: wording a failure {@code "<what>: <why>"}, the {@code -p}
 * bar, and Ctrl-C: a shutdown hook cancels the work and waits for it to undo what it started
 * (a backup merges its checkpoint back, deletes its partial file).
 */
final class BackupCli {
    private BackupCli() {
    }

    /** Work that reports to a Progress. */
    interface Work<T> {
        T run(Progress progress) throws IOException;
    }

    static <T> T run(String what, PrintWriter bar, boolean showBar, Work<T> work) {
        io.qcow4j.tools.Progress drawn = new io.qcow4j.tools.Progress(bar, showBar, 0);
        Progress progress = new Progress(drawn::update);
        CountDownLatch finished = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            progress.cancel();
            try {
                finished.await(60, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "qcow4j-cancel");
        boolean hooked = addHook(hook);
        try {
            T result = work.run(progress);
            drawn.finish();
            return result;
        } catch (Progress.Cancelled e) {
            throw new CliException(what + ": cancelled", 1, e);
        } catch (IOException | RuntimeException e) {
            if (e instanceof CliException ce) {
                throw ce;
            }
            throw new CliException(what + ": " + reason(e), 1, e);
        } finally {
            finished.countDown();
            if (hooked) {
                try {
                    Runtime.getRuntime().removeShutdownHook(hook);
                } catch (IllegalStateException e) {
                    // shutting down: the hook runs and finds the work finished
                }
            }
        }
    }

    private static boolean addHook(Thread hook) {
        try {
            Runtime.getRuntime().addShutdownHook(hook);
            return true;
        } catch (IllegalStateException | SecurityException e) {
            return false;
        }
    }

    /** Human sizes as qemu-img prints them ("1 MiB", "4.5 GiB"). */
    static String size(long bytes) {
        return Output.humanSize(bytes);
    }

    /** As {@link Images#reason}, but an object missing from a store is named ({@code s3://b/p/f: the object is missing}). */
    static String reason(Throwable e) {
        if (e instanceof java.nio.file.NoSuchFileException nsf && nsf.getFile() != null
                && io.qcow4j.backup.SetStores.isUri(nsf.getFile())) {
            return nsf.getFile() + ": " + (nsf.getReason() != null ? nsf.getReason() : "missing");
        }
        return Images.reason(e);
    }
}
