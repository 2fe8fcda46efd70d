package io.qcow4j.nbd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.io.TempDir;

import io.qcow4j.testing.Qemu;

/**
 * WRITE_ZEROES through our export, with libnbd as the client, for each kind of image the
 * export writes: with NBD_CMD_FLAG_FAST_ZERO only a v3 qcow2 image records zeros, and only
 * where a ragged cluster end already reads as zeros (else ENOTSUP and nothing written); a
 * plain WRITE_ZEROES writes zeros everywhere.
 */
@Timeout(120)
class NbdZeroesTest {
    private static final String SCRIPT = """
            import sys, nbd
            h = nbd.NBD()
            h.connect_uri(sys.argv[1])
            def zero(offset, count, fast):
                try:
                    h.zero(count, offset, nbd.CMD_FLAG_FAST_ZERO if fast else 0)
                    return "ok"
                except nbd.Error as e:
                    return "ENOTSUP" if "(ENOTSUP)" in str(e) else "error " + str(e)
            # aligned clusters that held nothing; part of a cluster holding data; a plain zero write
            print(zero(2 << 20, 1 << 20, True), zero(4096, 8192, True), zero(3 << 20, 4096, False))
            h.flush()
            h.shutdown()
            """;

    @TempDir
    Path dir;

    private void run(String... cmd) {
        Qemu.run(dir, Duration.ofSeconds(60), cmd).assertOk();
    }

    @ParameterizedTest
    @CsvSource({"qcow2,1.1,ok ENOTSUP ok", "qcow2,0.10,ENOTSUP ENOTSUP ok", "raw,,ENOTSUP ENOTSUP ok"})
    void fastZeroOnlyWhereZerosAreRecorded(String format, String compat, String expected) throws Exception {
        String name = "img." + format;
        if (compat == null) {
            run("qemu-img", "create", "-q", "-f", format, name, "8M");
        } else {
            run("qemu-img", "create", "-q", "-f", format, "-o", "compat=" + compat, name, "8M");
        }
        run("qemu-io", "-f", format, "-c", "write -P 1 0 1M", "-c", "write -P 2 2M 1M", "-c", "write -P 3 3M 64k", name);
        Path script = dir.resolve("zeroes.py");
        Files.writeString(script, SCRIPT);
        Path img = dir.resolve(name);
        try (Servers.Ours o = new Servers.Ours(img, format, true, dir.resolve("o.sock"), b -> { })) {
            Qemu.Result r = Qemu.run(Duration.ofSeconds(60), "/usr/bin/python3", script.toString(), o.uri());
            assertEquals(0, r.exitCode(), r.describe());
            assertEquals(expected, r.stdout().strip());
        }
        boolean fast = expected.startsWith("ok");
        run("qemu-io", "-f", format, "-c", "read -P 1 0 1M", "-c", "read -P " + (fast ? 0 : 2) + " 2M 1M",
                "-c", "read -P 0 3M 4k", "-c", "read -P 3 3076k 60k", name);
        if (format.equals("qcow2")) {
            assertEquals(0, Qemu.check(img).exitCode());
        }
    }
}
