package io.qcow4j.testing;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One SIGKILL trial of a {@link Scenario} run by a child JVM (as core's KillTrialsTest runs
 * them, for scenarios of other modules): the child prints {@code begin N}, {@code ack N} and
 * {@code done}; it is killed once it began operation {@code killAt}, after a delay (so that
 * a kill can land inside a long operation); then the scenario verifies the files with
 * everything up to the last barrier that returned durable.
 */
public final class KillTrial {
    /** Files prepared, children started and verified one at a time (a fork inherits open images' locks). */
    private static final Lock TURN = new ReentrantLock();

    private KillTrial() {
    }

    /**
     * Returns whether the child died before it finished; an AssertionError says what is wrong.
     * {@code child} is a main class taking {@code childArgs} then the directory.
     */
    public static boolean run(Scenario s, Path dir, int killAt, long delayMillis, Class<?> child, List<String> childArgs)
            throws Exception {
        Files.createDirectories(dir);
        TURN.lock();
        try {
            s.prepare(dir);
        } finally {
            TURN.unlock();
        }
        List<String> args = new ArrayList<>(childArgs);
        args.add(dir.toString());
        List<String> cmd = ChildJvm.command(List.of("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto"),
                child, args.toArray(String[]::new));
        Process p;
        TURN.lock();
        try {
            p = new ProcessBuilder(cmd).redirectError(dir.resolve("child.err").toFile()).start();
        } finally {
            TURN.unlock();
        }
        int begun = -1;
        int acked = 0;
        int barrierAcked = 0;
        boolean done = false;
        try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            boolean kill = false;
            while ((line = out.readLine()) != null) {
                if (line.startsWith("begin ")) {
                    begun = Integer.parseInt(line.substring(6));
                    if (begun == killAt && !kill) {
                        Thread.sleep(delayMillis);
                        // SIGKILL through the handle: Process.destroyForcibly would also close the pipe
                        p.toHandle().destroyForcibly();
                        kill = true;
                    }
                } else if (line.startsWith("ack ")) {
                    int op = Integer.parseInt(line.substring(4));
                    acked = op + 1;
                    if (s.isBarrier(op)) {
                        barrierAcked = op + 1;
                    }
                } else if (line.equals("done")) {
                    done = true;
                }
            }
        } finally {
            p.destroyForcibly();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                throw new AssertionError("the child did not die");
            }
        }
        if (!done && begun < killAt) {
            throw new AssertionError("the child failed before operation " + killAt + " (last begun " + begun + "): "
                    + Files.readString(dir.resolve("child.err")).lines().limit(3).toList());
        }
        int inflight = done ? s.operations() : begun;
        TURN.lock();
        try {
            s.verify(dir, done ? s.operations() : barrierAcked, inflight);
        } catch (AssertionError e) {
            String op = s instanceof DiskScenario d ? " (" + d.describe(begun) + ")" : "";
            throw new AssertionError("last begun " + begun + op + ", " + acked + " acknowledged, " + barrierAcked
                    + " up to the last barrier: " + e.getMessage(), e);
        } finally {
            TURN.unlock();
        }
        return !done;
    }

    /** The child's side: runs {@code s} on {@code dir}, printing what {@link #run} reads. */
    public static void child(Scenario s, Path dir) throws Exception {
        java.io.PrintStream out = new java.io.PrintStream(System.out, true, "UTF-8");
        out.println("ready");
        s.run(dir, new Scenario.Steps() {
            @Override
            public void begin(int op) {
                out.println("begin " + op);
            }

            @Override
            public void ack(int op) {
                out.println("ack " + op);
            }
        });
        out.println("done");
    }
}
