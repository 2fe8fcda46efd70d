package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** qcow4j bitmap against qemu-img bitmap on twin images; all-or-nothing on failure. */
class BitmapIT {

    private static JsonNode bitmaps(Path dir, String img) {
        return Cli.json(Cli.qemuImg(dir, "info", "--output=json", img).stdout()).path("format-specific").path("data").path("bitmaps");
    }

    @Test
    void sameSequenceSameBitmaps(@TempDir Path dir) {
        for (String img : List.of("ours.qcow2", "theirs.qcow2")) {
            Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", img, "64M").assertOk();
            Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "src-" + img, "64M").assertOk();
        }
        List<String[]> steps = List.of(
                new String[] {"--add", "IMG", "a"},
                new String[] {"--add", "-g", "512k", "--disable", "IMG", "b"},
                new String[] {"IO", "write 1M 64k"},
                new String[] {"--add", "-g", "4096", "IMG", "c"},
                new String[] {"--merge", "a", "--disable", "IMG", "c"},
                new String[] {"--clear", "--enable", "IMG", "b"},
                new String[] {"IO", "write 5M 1k"},
                new String[] {"--add", "--remove", "IMG", "tmp"},
                new String[] {"SRC", "write 9M 64k"},
                new String[] {"--merge", "s", "-b", "SRC", "-F", "qcow2", "IMG", "b"},
                new String[] {"--disable", "IMG", "a"},
                new String[] {"--remove", "IMG", "c"});
        for (String img : List.of("ours.qcow2", "theirs.qcow2")) {
            boolean ours = img.startsWith("ours");
            // the merge source: a bitmap in another image
            Cli.qemuImg(dir, "bitmap", "--add", "src-" + img, "s").assertOk();
            for (String[] step : steps) {
                if (step[0].equals("IO") || step[0].equals("SRC")) {
                    String target = step[0].equals("IO") ? img : "src-" + img;
                    Cli.qemuIo(dir, "-f", "qcow2", "-c", step[1], target).assertOk();
                    continue;
                }
                List<String> args = new ArrayList<>(List.of("bitmap"));
                for (String s : step) {
                    args.add(s.equals("IMG") ? img : s.equals("SRC") ? "src-" + img : s);
                }
                Qemu.Result r = ours ? Cli.qcow4j(dir, args.toArray(new String[0])) : Cli.qemuImg(dir, args.toArray(new String[0]));
                r.assertOk();
            }
        }
        assertEquals(bitmaps(dir, "theirs.qcow2"), bitmaps(dir, "ours.qcow2"));
        assertEquals(0, Cli.qemuImg(dir, "check", "ours.qcow2").exitCode());
        for (String name : List.of("a", "b")) {
            assertEquals(Qemu.nbdMap(dir.resolve("theirs.qcow2"), name), Qemu.nbdMap(dir.resolve("ours.qcow2"), name), name);
        }
    }

    @Test
    void aFailingActionLeavesTheFileByteIdentical(@TempDir Path dir) throws IOException {
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "i.qcow2", "64M").assertOk();
        Cli.qemuImg(dir, "bitmap", "--add", "i.qcow2", "a").assertOk();
        Cli.qemuIo(dir, "-f", "qcow2", "-c", "write 0 64k", "i.qcow2").assertOk();
        byte[] before = Files.readAllBytes(dir.resolve("i.qcow2"));
        String[][] failing = {
                {"--add", "--merge", "nosuch", "i.qcow2", "x"},
                {"--clear", "--add", "i.qcow2", "a"},
                {"--disable", "--remove", "--remove", "i.qcow2", "a"},
                {"--add", "-g", "100", "i.qcow2", "g"},
        };
        for (String[] f : failing) {
            List<String> args = new ArrayList<>(List.of("bitmap"));
            args.addAll(List.of(f));
            Qemu.Result r = Cli.qcow4j(dir, args.toArray(new String[0]));
            assertEquals(1, r.exitCode(), String.join(" ", f));
            assertTrue(r.stderr().startsWith("qcow4j: Operation "), r.stderr());
            assertEquals(1, r.stderr().strip().split("\n").length, "one error line: " + r.stderr());
            assertArrayEquals(before, Files.readAllBytes(dir.resolve("i.qcow2")), String.join(" ", f));
        }
        // qemu-img, by contrast, keeps the bitmap added before the failing merge (qemu-quirks.md)
        Qemu.Result q = Cli.qemuImg(dir, "bitmap", "--add", "--merge", "nosuch", "i.qcow2", "x");
        assertEquals(1, q.exitCode());
    }

    @Test
    void usageErrors(@TempDir Path dir) {
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "u.qcow2", "1M").assertOk();
        for (String[] bad : new String[][] {{"u.qcow2", "a"}, {"--add", "u.qcow2"}, {"-g", "64k", "--clear", "u.qcow2", "a"},
                {"-b", "x", "--clear", "u.qcow2", "a"}}) {
            List<String> args = new ArrayList<>(List.of("bitmap"));
            args.addAll(List.of(bad));
            Qemu.Result ours = Cli.qcow4j(dir, args.toArray(new String[0]));
            Qemu.Result theirs = Cli.qemuImg(dir, args.toArray(new String[0]));
            assertEquals(theirs.exitCode(), ours.exitCode(), String.join(" ", bad));
            assertEquals(theirs.stderr().replace("qemu-img:", "qcow4j:"), ours.stderr(), String.join(" ", bad));
        }
    }
}
