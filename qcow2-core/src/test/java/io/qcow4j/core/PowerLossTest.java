package io.qcow4j.core;

import java.nio.file.Path;
import java.util.stream.Stream;

import io.qcow4j.testing.CoreScenarios;
import io.qcow4j.testing.Replay;
import io.qcow4j.testing.Scenario;
import io.qcow4j.testing.Seeds;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Power-loss replay of the engine's operations ({@link CoreScenarios}): every write and
 * flush is recorded, and for a seeded sample of crash points the files are rebuilt as a
 * disk could hold them (everything before the last flush, any subset of the later writes,
 * some torn at 512-byte sectors). After each: {@code qemu-img check} finds no corruption,
 * every operation acknowledged before a completed flush reads back (and no sector reads
 * anything no operation wrote), every persistent bitmap is in_use or covers every change.
 * {@code -Dqcow4j.long=true} replays many more crash points.
 */
class PowerLossTest {
    /** Fixed in the default suite (see {@link Seeds}). */
    static final long SEED = Seeds.of(20261206L);

    static Stream<Scenario> scenarios() {
        return CoreScenarios.all(SEED).stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void crashesLeaveConsistentImages(Scenario s, @TempDir Path tmp) throws Exception {
        Replay.Summary summary = Replay.scenario(s, tmp, Replay.scale(12, 400));
        System.out.println("power-loss " + s + ": " + summary.crashes + " crashes of " + summary.events + " events");
        summary.assertNoFailure(s.toString());
    }
}
