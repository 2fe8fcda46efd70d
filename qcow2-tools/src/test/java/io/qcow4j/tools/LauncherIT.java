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
    void convertWithItsWarmUpThread(@TempDir Path dir) {
        // the launcher's convert starts JNA and Chronicle on a warm-up thread beside the main
        // one (Warmup): the copy is the same, qemu-img's check is clean, nothing on stderr
        Cli.qemuImg(dir, "create", "-q", "-f", "raw", "a.raw", "8M").assertOk();
        Cli.qemuIo(dir, "-f", "raw", "-c", "write -P 0x3c 1M 3M", "a.raw").assertOk();
        Qemu.Result r = Qemu.run(dir, Qemu.DEFAULT_TIMEOUT, "env", classLog(dir, "convert.log"),
                Cli.root().resolve("bin/qcow4j").toString(), "convert", "-O", "qcow2", "a.raw", "b.qcow2").assertOk();
        assertEquals("", r.stderr(), "no noise from the warm-up thread");
        assertArchiveUsed(dir.resolve("convert.log"), "qcow4j-bulk.jsa", "io.qcow4j.tools.ConvertCopy");
        Cli.qemuImg(dir, "check", "b.qcow2").assertOk();
        Cli.qemuImg(dir, "compare", "a.raw", "b.qcow2").assertOk();
        Qemu.Result back = Cli.qcow4jProcess(dir, "convert", "-O", "raw", "b.qcow2", "c.raw").assertOk();
        assertEquals("", back.stderr());
        Cli.qemuImg(dir, "compare", "-f", "raw", "-F", "raw", "a.raw", "c.raw").assertOk();
    }

    @Test
    void javaDashJarWritesWithoutFlags(@TempDir Path dir) {
        // the jar's manifest (Add-Opens, Add-Exports) gives Chronicle its access: no flags here,
        // no warning, nothing on stderr
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "x.qcow2", "16M").assertOk();
        Qemu.Result r = Qemu.run(dir, Qemu.DEFAULT_TIMEOUT, java(), "-jar", jar(), "io", "-c", "write -P 0x5a 0 64k", "x.qcow2");
        r.assertOk();
        assertEquals("", r.stderr(), "no warning, no noise");
        Cli.qemuImg(dir, "check", "x.qcow2").assertOk();
        Cli.qemuIo(dir, "-c", "read -P 0x5a 0 64k", "x.qcow2").assertOk();
    }

    @Test
    void classPathWithoutFlagsFallsBackWithOneWarning(@TempDir Path dir) {
        // as an application embedding the jar runs it: no manifest flags, no command-line flags
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "x.qcow2", "16M").assertOk();
        Qemu.Result r = Qemu.run(dir, Qemu.DEFAULT_TIMEOUT, java(), "-cp", jar(), "io.qcow4j.tools.Main",
                "io", "-c", "write -P 0xa5 1M 64k", "x.qcow2");
        r.assertOk();
        assertTrue(r.stderr().startsWith("qcow4j: warning: JVM flags missing for Chronicle Bytes: "), r.stderr());
        assertEquals(1, r.stderr().lines().count(), r.stderr());
        Cli.qemuImg(dir, "check", "x.qcow2").assertOk();
        Cli.qemuIo(dir, "-c", "read -P 0xa5 1M 64k", "-c", "read -P 0 0 1M", "x.qcow2").assertOk();
    }

    @Test
    void checkRunsOnItsOwnArchiveWithoutNoise(@TempDir Path dir) {
        // bin/qcow4j picks check's flags and class-data-sharing archive (when the build made
        // one); whichever it ran with, the report is qemu-img's and stderr stays empty
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "-o", "cluster_size=2M", "c.qcow2", "16T").assertOk();
        Qemu.run(dir, Qemu.DEFAULT_TIMEOUT, "env", classLog(dir, "check.log"),
                Cli.root().resolve("bin/qcow4j").toString(), "check", "c.qcow2").assertOk();
        assertArchiveUsed(dir.resolve("check.log"), "qcow4j-check.jsa", "io.qcow4j.core.check.CheckRun");
        for (String[] args : new String[][] {{"check", "c.qcow2"}, {"check", "--output=json", "c.qcow2"}}) {
            Qemu.Result ours = Cli.qcow4jProcess(dir, args).assertOk();
            Qemu.Result theirs = Cli.qemuImg(dir, args).assertOk();
            assertEquals(theirs.stdout(), ours.stdout());
            assertEquals("", ours.stderr(), "no JVM or CDS line on stderr");
        }
    }

    /** The launcher's extra JVM options: the class-load log into {@code name}, not onto stdout. */
    private static String classLog(Path dir, String name) {
        return "QCOW4J_JAVA_OPTS=-Xlog:class+load=info:file=" + dir.resolve(name);
    }

    /**
     * Where the build made the command's own static class-data-sharing archive (best
     * effort), {@code probe}, one of the command's classes, came from it; where it made none,
     * from the general archive or the jar.
     */
    private static void assertArchiveUsed(Path log, String archive, String probe) {
        String line;
        try {
            line = java.nio.file.Files.readAllLines(log).stream().filter(l -> l.contains(" " + probe + " "))
                    .findFirst().orElseThrow(() -> new AssertionError(probe + " not loaded: " + log));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        boolean made = java.nio.file.Files.isRegularFile(Cli.root().resolve("qcow2-tools/target/" + archive));
        // a static archive's classes say "shared objects file"; the general archive's, on top of
        // the JDK's, "shared objects file (top)"; without an archive, the jar
        assertEquals(made, line.endsWith("source: shared objects file"), line);
    }

    private static String java() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    private static String jar() {
        return Cli.root().resolve("qcow2-tools/target/qcow4j.jar").toString();
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
