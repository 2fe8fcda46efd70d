package io.qcow4j.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * One fault-injection trial of a {@link Scenario} (as core's FaultInjectionTest runs them,
 * for scenarios of other modules): event {@code n} of the run fails as {@code fault}; the
 * run must end in an {@link IOException}, and the files then verify with what was
 * acknowledged (up to the last barrier when the failure hit a barrier).
 */
public final class FaultTrial {
    private FaultTrial() {
    }

    /** Events (writes, reservations, length changes, flushes) of one clean run. */
    public static int countEvents(Scenario s, Path dir) throws Exception {
        Files.createDirectories(dir);
        s.prepare(dir);
        try (FaultyStorage.Plan p = FaultyStorage.Plan.install(-1, FaultyStorage.Fault.EIO, 0)) {
            s.run(dir, Scenario.QUIET);
            return p.events();
        }
    }

    /**
     * The events to fail: in the long mode about {@code longFaults} spread evenly over the
     * {@code events} with a seeded phase (every one when there are fewer), else
     * {@code defaultFaults} drawn at random.
     */
    public static java.util.List<Integer> targets(int events, java.util.Random r, int longFaults, int defaultFaults) {
        java.util.List<Integer> targets = new java.util.ArrayList<>();
        if (Seeds.longMode()) {
            int step = Math.max(1, events / longFaults);
            for (int n = step > 1 ? r.nextInt(step) : 0; n < events; n += step) {
                targets.add(n);
            }
        } else {
            for (int k = 0; k < defaultFaults; k++) {
                targets.add(r.nextInt(events));
            }
        }
        return targets;
    }

    /** One trial in {@code dir}; an AssertionError says what is wrong. */
    public static void run(Scenario s, Path dir, int n, FaultyStorage.Fault fault, long seed) throws Exception {
        Files.createDirectories(dir);
        s.prepare(dir);
        int[] begun = {-1};
        int[] acked = {0, 0};
        Scenario.Steps steps = new Scenario.Steps() {
            @Override
            public void begin(int op) {
                begun[0] = op;
            }

            @Override
            public void ack(int op) {
                acked[0] = op + 1;
                if (s.isBarrier(op)) {
                    acked[1] = op + 1;
                }
            }
        };
        Throwable thrown = null;
        String fired;
        try (FaultyStorage.Plan p = FaultyStorage.Plan.install(n, fault, seed)) {
            try {
                s.run(dir, steps);
            } catch (Exception | Error e) {
                thrown = e;
            }
            fired = p.fired();
        }
        if (fired == null) {
            throw new AssertionError("the run had fewer events than counted; " + thrown);
        }
        if (thrown == null) {
            throw new AssertionError(fired + " was reported as success (operation " + begun[0] + ")");
        }
        if (!(thrown instanceof IOException)) {
            throw new AssertionError(fired + " came back as " + thrown + ", not an IOException", thrown);
        }
        // a failed close (or flush) may lose what the last flush did not cover; any other
        // failure is followed by a close that writes everything the image acknowledged
        int durable = s.isBarrier(begun[0]) ? acked[1] : acked[0];
        try {
            s.verify(dir, durable, begun[0]);
        } catch (AssertionError e) {
            String op = s instanceof DiskScenario d ? " (" + d.describe(begun[0]) + ")" : "";
            throw new AssertionError(fired + " in operation " + begun[0] + op + ", thrown: " + thrown.getMessage() + ": "
                    + e.getMessage(), e);
        }
    }
}
