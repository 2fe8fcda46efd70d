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
                "compare e.qcow2 r.raw", "measure " + SECRET + " --image-opts " + OPTS,
                "measure -O qcow2 " + SECRET + " -o encrypt.format=luks --size 1G",
                "dd " + SECRET + " --image-opts if=" + OPTS + " of=dd.raw")) {
            twins.same(SETUP, c.split(" "));
        }
        twins.same(SETUP, "info", SECRET.split(" ")[0], SECRET.split(" ")[1], json);
        // qemu-img measure -o encrypt.format=luks times PBKDF2 first and fails when the machine is busy
        // ("Unable to get accurate CPU usage"): its figures, taken once from qemu-img 7.2
        Qemu.Result m = Cli.dropIn(tmp, ("measure -O qcow2 " + SECRET + " -o encrypt.format=luks,encrypt.key-secret=sec0 --size 1G")
                .split(" "));
        assertEquals("required size: 2490368\nfully allocated size: 1076232192\n", m.stdout(), m.describe());
        twins.same(SETUP, "convert", "-O", "raw", SECRET.split(" ")[0], SECRET.split(" ")[1], json, "out.raw");
    }

    /** The SETUP images, made once (qemu-img create times PBKDF2 for 2 s): copied for each test. */
    private static Path setupTemplate;

    @org.junit.jupiter.api.AfterAll
    static void dropTemplate() throws java.io.IOException {
        if (setupTemplate != null) {
            try (var files = java.nio.file.Files.list(setupTemplate)) {
                for (Path f : files.toList()) {
                    java.nio.file.Files.delete(f);
                }
            }
            java.nio.file.Files.delete(setupTemplate);
            setupTemplate = null;
        }
    }

    private Path setupCopy(String name) throws java.io.IOException {
        synchronized (LuksIT.class) {
            if (setupTemplate == null || !java.nio.file.Files.isDirectory(setupTemplate)) {
                setupTemplate = java.nio.file.Files.createTempDirectory("luks-it");
                for (String c : SETUP) {
                    DropInTwins.run(setupTemplate, c);
                }
            }
        }
        Path dir = Cli.mkdir(tmp, name);
        try (var files = java.nio.file.Files.list(setupTemplate)) {
            for (Path f : files.toList()) {
                java.nio.file.Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        return dir;
    }

    @Test
    void secretFromFileAndDecryptedCopyMatchesQemu() throws Exception {
        Path dir = setupCopy("file");
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

    @Test
    void createdImagesOpenInQemu() throws Exception {
        DropInTwins twins = new DropInTwins(tmp);
        // the refusals, in qemu-img's words
        List<String> none = List.of();
        twins.same(none, ("create -f qcow2 " + SECRET + " -o encrypt.format=luks n.qcow2 1M").split(" "));
        twins.same(none, ("create -f qcow2 " + SECRET + " -o encrypt.format=luks,encrypt.key-secret=sec1 n.qcow2 1M").split(" "));
        Path dir = Cli.mkdir(tmp, "create");
        String create = "create -f qcow2 " + SECRET + " -o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=50,"
                + "cluster_size=4k ";
        Qemu.Result theirs = Cli.qemuImg(dir, (create + "theirs.qcow2 3M").split(" "));
        Qemu.Result ours = Cli.dropIn(dir, (create + "ours.qcow2 3M").split(" "));
        assertEquals(theirs.stdout().replace("theirs", "ours"), ours.stdout());
        assertEquals(theirs.exitCode(), ours.exitCode(), ours.describe());
        String opts = "driver=qcow2,file.filename=ours.qcow2,encrypt.key-secret=sec0";
        // qemu reads and writes what we made, and finds it clean
        Cli.qemuIo(dir, "--object", "secret,id=sec0,data=abc", "--image-opts", opts, "-c", "read -P 0 0 3M",
                "-c", "write -P 0x5a 5000 70000").assertOk();
        Cli.qemuImg(dir, "check", "--object", "secret,id=sec0,data=abc", "--image-opts", opts).assertOk();
        // the same header fields as qemu-img's (but the random uuid and the iteration counts of each side's speed)
        String info = Cli.qemuImg(dir, "info", "ours.qcow2").stdout();
        String theirsInfo = Cli.qemuImg(dir, "info", "theirs.qcow2").stdout();
        assertEquals(fields(theirsInfo).replace("theirs", "ours"), fields(info));
        // and we read qemu's write back
        Cli.dropIn(dir, "convert", "-O", "raw", "--object", "secret,id=sec0,data=abc", "--image-opts", opts, "out.raw")
                .assertOk();
        Qemu.run(dir, Qemu.DEFAULT_TIMEOUT, "qemu-io", "-f", "raw", "-c", "read -P 0 0 5000", "-c", "read -P 0x5a 5000 70000",
                "-c", "read -P 0 75000 100000", "out.raw").assertOk();
    }

    @Test
    void convertIntoLuksWritesThroughTheCipher() throws Exception {
        Path dir = Cli.mkdir(tmp, "convert");
        Cli.qemuImg(dir, "create", "-q", "-f", "raw", "src.raw", "2M").assertOk();
        Qemu.run(dir, Qemu.DEFAULT_TIMEOUT, "qemu-io", "-f", "raw", "-c", "write -P 0x31 0 100k", "-c", "write -P 0x32 1M 4097",
                "src.raw").assertOk();
        Cli.dropIn(dir, "convert", "-O", "qcow2", "--object", "secret,id=sec0,data=abc", "-o",
                "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=50", "src.raw", "enc.qcow2").assertOk();
        String opts = "driver=qcow2,file.filename=enc.qcow2,encrypt.key-secret=sec0";
        Qemu.Result cmp = Cli.qemuImg(dir, "compare", "--object", "secret,id=sec0,data=abc", "--image-opts", opts,
                "driver=raw,file.filename=src.raw");
        assertEquals(0, cmp.exitCode(), cmp.describe());
        Cli.qemuImg(dir, "check", "--object", "secret,id=sec0,data=abc", "--image-opts", opts).assertOk();
        assertTrue(Cli.qemuImg(dir, "info", "enc.qcow2").stdout().contains("encrypted: yes"));
    }

    @Test
    void ioWritesQemuReadsBack() throws Exception {
        Path dir = setupCopy("io");
        Cli.qcow4j(dir, "io", "--object", "secret,id=sec0,data=abc", "--image-opts", OPTS, "-c", "write -P 0x77 1000 100000",
                "-c", "write -z 200k 64k", "-c", "discard 3M 64k", "-c", "read -P 0xab 0 1000").assertOk();
        // resize, snapshot and bitmap take the secret the same way (they change metadata only)
        for (String c : List.of("resize --image-opts " + OPTS + " 5M", "snapshot -c s1 --image-opts " + OPTS,
                "bitmap --add --image-opts " + OPTS + " b1")) {
            List<String> args = new java.util.ArrayList<>(List.of(c.split(" ")));
            args.addAll(1, List.of("--object", "secret,id=sec0,data=abc"));
            Cli.dropIn(dir, args.toArray(String[]::new)).assertOk();
        }
        Cli.qemuIo(dir, "--object", "secret,id=sec0,data=abc", "--image-opts", OPTS, "-c", "read -P 0xab 0 1000",
                "-c", "read -P 0x77 1000 100000", "-c", "read -P 0 101000 30072", "-c", "read -P 0 200k 64k",
                "-c", "read -P 0 3M 64k", "-c", "read -P 0 4M 1M").assertOk();
        Qemu.Result list = Cli.qemuImg(dir, "snapshot", "-l", "--object", "secret,id=sec0,data=abc", "--image-opts", OPTS);
        assertTrue(list.stdout().contains("s1"), list.describe());
        Cli.qemuImg(dir, "check", "--object", "secret,id=sec0,data=abc", "--image-opts", OPTS).assertOk();
    }

    /** An encrypted overlay of a plain base: copy-on-write encrypts the base's data, info names both as qemu-img. */
    @Test
    void encryptedOverlayOfAPlainBase() {
        Path dir = Cli.mkdir(tmp, "overlay");
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "base.qcow2", "1M").assertOk();
        Cli.qemuIo(dir, "-f", "qcow2", "-c", "write -P 0x21 0 1M", "base.qcow2").assertOk();
        Cli.dropIn(dir, "create", "-q", "-f", "qcow2", "--object", "secret,id=sec0,data=abc", "-b", "base.qcow2", "-F", "qcow2",
                "-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=50", "ov.qcow2").assertOk();
        String ov = "driver=qcow2,file.filename=ov.qcow2,encrypt.key-secret=sec0";
        Cli.qcow4j(dir, "io", "--object", "secret,id=sec0,data=abc", "--image-opts", ov, "-c", "write -P 0x22 1000 3000")
                .assertOk();
        Cli.qemuIo(dir, "--object", "secret,id=sec0,data=abc", "--image-opts", ov, "-c", "read -P 0x21 0 1000",
                "-c", "read -P 0x22 1000 3000", "-c", "read -P 0x21 4000 1044576").assertOk();
        Cli.qemuImg(dir, "check", "--object", "secret,id=sec0,data=abc", "--image-opts", ov).assertOk();
        Qemu.Result theirs = Cli.qemuImg(dir, "info", "--output=json", "ov.qcow2");
        Qemu.Result ours = Cli.dropIn(dir, "info", "--output=json", "ov.qcow2");
        assertEquals(Cli.withoutAllocation(Cli.json(theirs.stdout())), Cli.withoutAllocation(Cli.json(ours.stdout())));
        assertEquals(theirs.stdout().replaceAll("\"actual-size\": \\d+", ""), ours.stdout().replaceAll("\"actual-size\": \\d+", ""),
                "key order");
    }

    /**
     * amend of keyslots, one step after the other on two copies: qemu-img's and ours print
     * the same, exit the same and leave the same slots active; the passphrases that remain
     * open the image in qemu-io, the erased one does not.
     */
    @Test
    void amendKeyslotsAsQemuImg() throws Exception {
        Path dir = setupCopy("amend");
        java.nio.file.Files.copy(dir.resolve("e.qcow2"), dir.resolve("o.qcow2"));
        String[] objects = {"--object", "secret,id=sec0,data=abc", "--object", "secret,id=sec1,data=def"};
        for (String o : List.of("encrypt.state=active,encrypt.new-secret=sec1,encrypt.iter-time=50",
                "encrypt.state=active,encrypt.new-secret=sec1,encrypt.keyslot=1,encrypt.iter-time=50",
                "encrypt.state=inactive,encrypt.old-secret=sec0", "encrypt.state=inactive,encrypt.keyslot=3",
                "encrypt.state=inactive,encrypt.keyslot=8", "encrypt.new-secret=sec1", "encrypt.state=active",
                "encrypt.state=inactive", "encrypt.state=active,encrypt.new-secret=sec1,encrypt.old-secret=sec1",
                "encrypt.state=active,encrypt.new-secret=sec2",
                "encrypt.state=active,encrypt.new-secret=sec1,encrypt.keyslot=5,encrypt.iter-time=50",
                "encrypt.state=inactive,encrypt.keyslot=5", "encrypt.state=inactive,encrypt.old-secret=sec1",
                "encrypt.state=inactive,encrypt.old-secret=sec0")) {
            List<String> args = new java.util.ArrayList<>(List.of("amend"));
            args.addAll(List.of(objects));
            args.addAll(List.of("--image-opts", "", "-o", o));
            args.set(args.indexOf(""), OPTS);
            Qemu.Result theirs = Cli.qemuImg(dir, args.toArray(String[]::new));
            args.set(args.indexOf(OPTS), OPTS.replace("e.qcow2", "o.qcow2"));
            Qemu.Result ours = Cli.dropIn(dir, args.toArray(String[]::new));
            assertEquals(theirs.exitCode(), ours.exitCode(), o + "\n" + theirs.describe() + "\n" + ours.describe());
            assertEquals(theirs.stdout(), ours.stdout(), o);
            assertEquals(theirs.stderr().replace("e.qcow2", "o.qcow2"), ours.stderr(), o);
            assertEquals(activeSlots(dir, "e.qcow2"), activeSlots(dir, "o.qcow2"), o);
        }
        // slot 1 holds "def" now, "abc" was erased
        assertEquals("[false, true, false, false, false, false, false, false]", activeSlots(dir, "o.qcow2"));
        String opts1 = "driver=qcow2,file.filename=o.qcow2,encrypt.key-secret=sec1";
        Cli.qemuIo(dir, "--object", "secret,id=sec1,data=def", "--image-opts", opts1, "-c", "read -P 0xab 0 64k").assertOk();
        Qemu.Result old = Cli.qemuIo(dir, "--object", "secret,id=sec0,data=abc", "--image-opts",
                OPTS.replace("e.qcow2", "o.qcow2"), "-c", "read 0 1");
        assertTrue(old.stderr().contains("Invalid password, cannot unlock any keyslot"), old.describe());
        Cli.qemuImg(dir, "check", "--object", "secret,id=sec1,data=def", "--image-opts", opts1).assertOk();
    }

    private static String activeSlots(Path dir, String image) {
        List<Boolean> active = new java.util.ArrayList<>();
        for (var slot : Cli.json(Cli.qemuImg(dir, "info", "--output=json", image).stdout())
                .path("format-specific").path("data").path("encrypt").path("slots")) {
            active.add(slot.path("active").asBoolean());
        }
        return active.toString();
    }

    /** qemu-img info's lines without the ones that differ by chance or by speed. */
    private static String fields(String info) {
        StringBuilder b = new StringBuilder();
        for (String l : info.split("\n")) {
            if (!l.contains("uuid:") && !l.contains("iters:") && !l.startsWith("disk size:")) {
                b.append(l).append('\n');
            }
        }
        return b.toString();
    }
}
