package io.qcow4j.bitmaps;

import java.nio.file.Path;

import io.qcow4j.testing.KillTrial;

/** Child process of {@link ChainKillTrialsTest}: one chain job ({@code job seed dir}) run until it ends or is killed. */
public final class ChainScenarioChild {
    private ChainScenarioChild() {
    }

    public static void main(String[] args) throws Exception {
        KillTrial.child(new ChainPowerLossTest.ChainJob(Long.parseLong(args[1]), args[0]), Path.of(args[2]));
    }
}
