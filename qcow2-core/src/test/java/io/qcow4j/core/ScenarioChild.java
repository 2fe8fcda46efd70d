package io.qcow4j.core;

import java.io.PrintStream;
import java.nio.file.Path;

import io.qcow4j.testing.CoreScenarios;
import io.qcow4j.testing.Scenario;

/**
 * Child process of {@link KillTrialsTest}: runs one scenario of {@link CoreScenarios} (by
 * name, of the list made from a seed) on the files of a directory, printing {@code begin N} before operation N
 * and {@code ack N} once it returned, each line flushed, until it ends or is killed.
 */
public final class ScenarioChild {
    private ScenarioChild() {
    }

    public static void main(String[] args) throws Exception {
        Scenario s = KillTrialsTest.find(args[0], Long.parseLong(args[1]));
        PrintStream out = new PrintStream(System.out, true, "UTF-8");
        out.println("ready");
        s.run(Path.of(args[2]), new Scenario.Steps() {
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
