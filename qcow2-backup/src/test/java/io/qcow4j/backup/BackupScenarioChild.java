package io.qcow4j.backup;

import java.nio.file.Path;

import io.qcow4j.testing.KillTrial;

/** Child process of {@link BackupReliabilityTest}'s kill trials: {@code seed format dir}. */
public final class BackupScenarioChild {
    private BackupScenarioChild() {
    }

    public static void main(String[] args) throws Exception {
        KillTrial.child(new BackupScenario(Long.parseLong(args[0]), Format.parse(args[1])), Path.of(args[2]));
    }
}
