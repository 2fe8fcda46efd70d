package io.qcow4j.core.engine;

import java.io.IOException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Independent CPU work of one request (decompressing or compressing its clusters) spread
 * over the machine's cores: the calling thread works too, and helpers from one shared pool
 * of daemon threads join it. Nothing here touches the image: the tasks see only buffers,
 * so the engine's one-request-at-a-time rule still holds.
 */
public final class Parallel {
    /** Threads that may work at once, the caller included. */
    public static final int THREADS = Math.max(1, Runtime.getRuntime().availableProcessors());

    private static volatile ExecutorService pool;

    private Parallel() {
    }

    /** One task by index; may throw an IOException, which the caller then gets. */
    public interface Task {
        void run(int index) throws IOException;
    }

    /**
     * Runs {@code task} for every index in {@code [0, count)}, in no particular order, and
     * returns when all are done. The first failure is rethrown (the remaining indexes are
     * skipped); a task's RuntimeException or Error likewise.
     */
    public static void forEach(int count, Task task) throws IOException {
        if (count <= 0) {
            return;
        }
        int helpers = Math.min(THREADS, count) - 1;
        if (helpers == 0) {
            for (int i = 0; i < count; i++) {
                task.run(i);
            }
            return;
        }
        Job job = new Job(count, task);
        ExecutorService p = pool();
        for (int h = 0; h < helpers; h++) {
            p.execute(job::help);
        }
        job.drain();
        job.close();
        Throwable t = job.failure.get();
        if (t instanceof IOException e) {
            throw e;
        } else if (t instanceof RuntimeException e) {
            throw e;
        } else if (t instanceof Error e) {
            throw e;
        }
    }

    /** The indexes of one {@link #forEach} and the helpers working on them. */
    private static final class Job {
        private final int count;
        private final Task task;
        private final AtomicInteger next = new AtomicInteger();
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        private int active;
        private boolean closed;

        Job(int count, Task task) {
            this.count = count;
            this.task = task;
        }

        /** A pool thread joins, unless the caller finished already (it waits only for those that joined). */
        void help() {
            synchronized (this) {
                if (closed) {
                    return;
                }
                active++;
            }
            try {
                drain();
            } finally {
                synchronized (this) {
                    active--;
                    notifyAll();
                }
            }
        }

        void drain() {
            while (failure.get() == null) {
                int i = next.getAndIncrement();
                if (i >= count) {
                    return;
                }
                try {
                    task.run(i);
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                    return;
                }
            }
        }

        /** Waits for the helpers still working: they write into the caller's buffers. */
        synchronized void close() {
            closed = true;
            boolean interrupted = false;
            while (active > 0) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static ExecutorService pool() {
        ExecutorService p = pool;
        if (p == null) {
            synchronized (Parallel.class) {
                p = pool;
                if (p == null) {
                    AtomicInteger n = new AtomicInteger();
                    p = Executors.newFixedThreadPool(Math.max(1, THREADS - 1), r -> {
                        Thread t = new Thread(r, "qcow4j-worker-" + n.incrementAndGet());
                        t.setDaemon(true);
                        return t;
                    });
                    pool = p;
                }
            }
        }
        return p;
    }
}
