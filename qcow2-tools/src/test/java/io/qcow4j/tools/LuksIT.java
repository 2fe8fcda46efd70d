package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LUKS-encrypted qcow2 images (encrypt.format=luks) made by qemu-img, with the secret given
 * as --object secret (data= or file=) and named by --image-opts or json: encrypt.key-secret:
 * qemu-img and qcow4j in drop-in mode on twin directories print the same and leave the
 * same files (info with and without the secret, check, map, convert to raw, compare, and
 * the refusals: no secret, a wrong passphrase, an unknown secret id).
 */
class LuksIT {
    @TempDir
    Path tmp;

    static final String SECRET = "--object secret,id=sec0,data=abc";
    static final String OPTS = "driver=qcow2,file.filename=e.qcow2,encrypt.key-secret=sec0";
    /** iter-time 20 ms: PBKDF2 stays quick on both sides. */
    static final List<String> SETUP = List.of(
            "create -q -f qcow2 " + SECRET + " -o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=20 e.qcow2 4M",
            "qemu-io|--object|secret,id=sec0,data=abc|--image-opts|" + OPTS
                    + "|-c|write -P 0xab 0 64k|-c|write -P 0xcd 70000 1000|-c|write -P 0x11 3M 4097|-c|write -z 1M 64k",
            "create -q -f raw r.raw 4M");

    @Test
    void readCommandsAsQemuImg() {
        DropInTwins twins = new DropInTwins(tmp);
        String json = "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"e.qcow2\"},"
                + "\"encrypt\":{\"key-secret\":\"sec0\"}}";
        for (String c : List.of("info e.qcow2", "info --output=json e.qcow2",
                "info " + SECRET + " --image-opts " + OPTS, "info --output=json " + SECRET + " --image-opts " + OPTS,
                "check e.qcow2", "check " + SECRET + " --image-opts " + OPTS,
                "check --output=json " + SECRET + " --image-opts " + OPTS,
                "map --output=json e.qcow2", "map --output=json " + SECRET + " --image-opts " + OPTS,
                "map " + SECRET + " --image-opts " + OPTS,
                "convert -O raw e.qcow2 out.raw", "convert -O raw " + SECRET + " --image-opts " + OPTS + " out.raw",
                "convert -O raw --object secret,id=sec0,data=abd --image-opts " + OPTS + " out.raw",
                "convert -O raw " + SECRET + " --image-opts " + OPTS.replace("sec0", "sec1") + " out.raw",
                "compare " + SECRET + " --image-opts " + OPTS + " driver=raw,file.filename=r.raw",
                "compare e.qcow2 r.raw")) {
            twins.same(SETUP, c.split(" "));
        }
        twins.same(SETUP, "info", SECRET.split(" ")[0], SECRET.split(" ")[1], json);
        twins.same(SETUP, "convert", "-O", "raw", SECRET.split(" ")[0], SECRET.split(" ")[1], json, "out.raw");
    }

    @Test
    void secretFromFileAndDecryptedCopyMatchesQemu() throws Exception {
        Path dir = Cli.mkdir(tmp, "file");
        for (String c : SETUP) {
            DropInTwins.run(dir, c);
        }
        java.nio.file.Files.writeString(dir.resolve("pass"), "abc");
        String obj = "secret,id=sec0,file=pass";
        Cli.qemuImg(dir, "convert", "-O", "raw", "--object", obj, "--image-opts", OPTS, "theirs.raw").assertOk();
        Qemu.Result ours = Cli.dropIn(dir, "convert", "-O", "raw", "--object", obj, "--image-opts", OPTS, "ours.raw");
        ours.assertOk();
        assertTrue(Qemu.compare(dir.resolve("theirs.raw"), dir.resolve("ours.raw")));
        // and not just zeros: the patterns qemu-io wrote
        Qemu.Result read = Qemu.run(dir, Qemu.DEFAULT_TIMEOUT, "qemu-io", "-f", "raw", "-c", "read -P 0xab 0 64k",
                "-c", "read -P 0xcd 70000 1000", "-c", "read -P 0x11 3M 4097", "ours.raw");
        assertEquals(0, read.exitCode(), read.describe());
    }
}
