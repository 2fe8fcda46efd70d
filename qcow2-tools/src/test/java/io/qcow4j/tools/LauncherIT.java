package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;

import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** bin/qcow4j as users run it: a new JVM, the shaded jar, the Chronicle flags, one-line errors. */
class LauncherIT {

    @Test
    void launcherRunsTheJar(@TempDir Path dir) {
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "a.qcow2", "1M").assertOk();
        Qemu.Result ours = Cli.qcow4jProcess(dir, "info", "--output=json", "a.qcow2").assertOk();
        Qemu.Result theirs = Cli.qemuImg(dir, "info", "--output=json", "a.qcow2").assertOk();
        assertEquals(Cli.json(theirs.stdout()), Cli.json(ours.stdout()));
        assertEquals("", ours.stderr(), "no logging noise on stderr");
        // a write through the mapped (Chronicle) storage, in a fresh JVM with the launcher's flags
        Cli.qcow4jProcess(dir, "io", "-c", "write -P 0x5a 0 64k", "a.qcow2").assertOk();
        Cli.qemuIo(dir, "-c", "read -P 0x5a 0 64k", "a.qcow2").assertOk();
    }

    @Test
    void errorsAreOneLineWithoutStackTrace(@TempDir Path dir) {
        Qemu.Result r = Cli.qcow4jProcess(dir, "info", "missing.qcow2");
        assertEquals(1, r.exitCode());
        assertEquals("qcow4j: Could not open 'missing.qcow2': No such file or directory\n", r.stderr());
        Qemu.Result debug = Cli.qcow4jProcess(dir, "--debug", "info", "missing.qcow2");
        assertTrue(debug.stderr().contains("\tat "), "--debug shows the trace");
    }
}
