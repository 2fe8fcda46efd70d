package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** qcow4j snapshot against qemu-img snapshot: the same listing, the same effects on twins, the same errors. */
class SnapshotIT {

    /** An image with data and snapshots that qemu-img made (a repeated name, a long one, one after a resize). */
    private static void qemuImage(Path dir, String img) {
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, "8M").assertOk();
        Cli.qemuIo(dir, "-f", "qcow2", "-c", "write -c -P 0x11 0 4k", "-c", "write -P 0x22 1M 300k", img).assertOk();
        Cli.qemuImg(dir, "snapshot", "-c", "first", img).assertOk();
        Cli.qemuIo(dir, "-f", "qcow2", "-c", "write -P 0x33 1100k 8k", "-c", "write -z 4M 1M", img).assertOk();
        Cli.qemuImg(dir, "snapshot", "-c", "a-rather-long-snapshot-name", img).assertOk();
        Cli.qemuImg(dir, "snapshot", "-c", "first", img).assertOk();
        Cli.qemuImg(dir, "resize", "-q", img, "12M").assertOk();
        Cli.qemuIo(dir, "-f", "qcow2", "-c", "write -P 0x44 10M 64k", img).assertOk();
        Cli.qemuImg(dir, "snapshot", "-c", "big", img).assertOk();
    }

    @Test
    void listIsQemuImgs(@TempDir Path dir) {
        qemuImage(dir, "i.qcow2");
        for (String[] args : new String[][] {{"-l", "i.qcow2"}, {"-lU", "i.qcow2"}, {"i.qcow2", "-q", "-l"}}) {
            List<String> a = new ArrayList<>(List.of("snapshot"));
            a.addAll(List.of(args));
            Qemu.Result ours = Cli.qcow4j(dir, a.toArray(new String[0]));
            Qemu.Result theirs = Cli.qemuImg(dir, a.toArray(new String[0]));
            assertEquals(0, ours.exitCode(), ours.describe());
            assertEquals(theirs.stdout(), ours.stdout(), String.join(" ", args));
            assertTrue(ours.stdout().startsWith("Snapshot list:\n"), ours.stdout());
        }
        // no snapshots: nothing at all
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "e.qcow2", "1M").assertOk();
        assertEquals("", Cli.qcow4j(dir, "snapshot", "-l", "e.qcow2").assertOk().stdout());
        assertEquals("", Cli.qemuImg(dir, "snapshot", "-l", "e.qcow2").assertOk().stdout());
    }

    @Test
    void sameEffectsAsQemuImgOnTwins(@TempDir Path dir) throws IOException {
        qemuImage(dir, "ours.qcow2");
        Files.copy(dir.resolve("ours.qcow2"), dir.resolve("theirs.qcow2"));
        String[][] steps = {
                {"-c", "new"}, {"IO", "write -P 0x55 2M 100k"}, {"-a", "first"}, {"IO", "write -P 0x66 1M 4k"},
                {"-d", "first"}, {"-a", "big"}, {"-c", "new"}, {"IO", "discard 10M 64k"}, {"-a", "5"},
                {"-d", "new"}, {"-d", "new"}, {"-d", "big"}, {"-c", "x"}, {"-d", "a-rather-long-snapshot-name"},
                {"-d", "first"}, {"-d", "x"}, {"-c", "end"},
        };
        for (String[] step : steps) {
            String what = String.join(" ", step);
            if (step[0].equals("IO")) {
                for (String img : List.of("ours.qcow2", "theirs.qcow2")) {
                    Cli.qemuIo(dir, "-f", "qcow2", "-c", step[1], img).assertOk();
                }
                continue;
            }
            Qemu.Result ours = Cli.qcow4j(dir, "snapshot", step[0], step[1], "ours.qcow2");
            Qemu.Result theirs = Cli.qemuImg(dir, "snapshot", step[0], step[1], "theirs.qcow2");
            assertEquals(theirs.exitCode(), ours.exitCode(), what + "\n" + ours.describe() + "\n" + theirs.describe());
            assertEquals(theirs.stdout(), ours.stdout(), what);
            assertEquals(theirs.stderr().replace("qemu-img:", "qcow4j:"), ours.stderr(), what);
            for (String img : List.of("ours.qcow2", "theirs.qcow2")) {
                Qemu.Result check = Cli.qemuImg(dir, "check", img);
                assertEquals(0, check.exitCode(), what + ": " + check.describe());
            }
            assertEquals(withoutDates(Cli.qemuImg(dir, "snapshot", "-l", "theirs.qcow2").stdout()),
                    withoutDates(Cli.qemuImg(dir, "snapshot", "-l", "ours.qcow2").stdout()), what);
            assertEquals(Cli.json(Cli.qemuImg(dir, "info", "--output=json", "theirs.qcow2").stdout()).path("virtual-size"),
                    Cli.json(Cli.qemuImg(dir, "info", "--output=json", "ours.qcow2").stdout()).path("virtual-size"), what);
            assertEquals(0, Cli.qemuImg(dir, "compare", "ours.qcow2", "theirs.qcow2").exitCode(), what);
            for (String id : ids(dir, "theirs.qcow2")) {
                Cli.qemuImg(dir, "convert", "-O", "raw", "-l", "snapshot.id=" + id, "ours.qcow2", "o.raw").assertOk();
                Cli.qemuImg(dir, "convert", "-O", "raw", "-l", "snapshot.id=" + id, "theirs.qcow2", "t.raw").assertOk();
                assertArrayEquals(Files.readAllBytes(dir.resolve("t.raw")), Files.readAllBytes(dir.resolve("o.raw")), what + ": snapshot " + id);
            }
        }
    }

    @Test
    void errorsAreQemuImgs(@TempDir Path dir) throws IOException {
        qemuImage(dir, "i.qcow2");
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "-o", "data_file=d.data", "d.qcow2", "1M").assertOk();
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "-o", "refcount_bits=1", "r.qcow2", "1M").assertOk();
        Cli.qemuIo(dir, "-f", "qcow2", "-c", "write 0 64k", "r.qcow2").assertOk();
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "b.qcow2", "1M").assertOk();
        Cli.qemuImg(dir, "snapshot", "-c", "s", "b.qcow2").assertOk();
        Cli.qemuImg(dir, "bitmap", "--add", "b.qcow2", "bm").assertOk();
        Cli.qemuImg(dir, "create", "-q", "-f", "raw", "raw.img", "1M").assertOk();
        String[][] cases = {
                {}, {"-l"}, {"-l", "-c", "x", "IMG"}, {"-c", "x", "-a", "y", "IMG"}, {"-c"}, {"-x", "IMG"}, {"--nope", "IMG"},
                {"-l", "IMG", "IMG"}, {"-U", "-c", "x", "IMG"}, {"-U", "IMG"}, {"-l", "nosuch.qcow2"},
                {"-a", "nosuch", "IMG"}, {"-d", "nosuch", "IMG"}, {"-d", "1", "IMG"},
                {"-c", "x", "d.qcow2"}, {"-c", "x", "r.qcow2"}, {"-a", "s", "b.qcow2"},
                {"-c", "x", "raw.img"}, {"-a", "x", "raw.img"}, {"-d", "x", "raw.img"},
        };
        for (String[] c : cases) {
            Path before = dir.resolve("copy.qcow2");
            List<String> ours = new ArrayList<>(List.of("snapshot"));
            List<String> theirs = new ArrayList<>(List.of("snapshot"));
            for (String a : c) {
                ours.add(a.equals("IMG") ? "i.qcow2" : a);
                theirs.add(a.equals("IMG") ? "t.qcow2" : a);
            }
            Files.copy(dir.resolve("i.qcow2"), dir.resolve("t.qcow2"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            Files.copy(dir.resolve("i.qcow2"), before, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            Qemu.Result q = Cli.qemuImg(dir, theirs.toArray(new String[0]));
            Qemu.Result o = Cli.qcow4j(dir, ours.toArray(new String[0]));
            String what = String.join(" ", c);
            assertEquals(q.exitCode(), o.exitCode(), what + "\n" + o.describe() + "\n" + q.describe());
            if (q.exitCode() != 0) {
                Cli.assertOneLineError(o, 1, expected(q).replace("t.qcow2", "i.qcow2"));
            }
            assertArrayEquals(Files.readAllBytes(before), Files.readAllBytes(dir.resolve("i.qcow2")), what + " changed the image");
        }
    }

    /** qemu-img's error as qcow4j says it: one line, without the help hint and the repeated "Could not open". */
    private static String expected(Qemu.Result q) {
        String text = q.stderr().lines()
                .filter(l -> !l.startsWith("Try 'qemu-img --help'") && !l.startsWith("WARNING:") && !l.startsWith("         "))
                .map(l -> l.replaceFirst("^qemu-img: ", ""))
                .collect(Collectors.joining(" "));
        return text.replaceAll("Could not open '([^']*)': Could not open '\\1': ", "Could not open '$1': ");
    }

    private static String withoutDates(String list) {
        return list.replaceAll("\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d", "DATE");
    }

    private static List<String> ids(Path dir, String img) {
        List<String> ids = new ArrayList<>();
        for (var s : Cli.json(Cli.qemuImg(dir, "info", "--output=json", img).stdout()).path("snapshots")) {
            ids.add(s.path("id").asText());
        }
        return ids;
    }
}
