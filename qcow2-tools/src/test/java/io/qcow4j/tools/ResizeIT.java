package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code qcow4j resize} against {@code qemu-img resize} on twins; bitmaps follow the size (iotest 246). */
class ResizeIT {
    @TempDir
    Path tmp;

    private List<Path> twins(String size, String... io) {
        List<Path> dirs = new ArrayList<>();
        for (String who : List.of("ours", "theirs")) {
            Path d = Cli.mkdir(tmp, who);
            qemuImg(d, "create", "-q", "-f", "qcow2", "i.qcow2", size).assertOk();
            qemuImg(d, "bitmap", "--add", "-g", "64k", "i.qcow2", "on").assertOk();
            qemuImg(d, "bitmap", "--add", "-g", "1M", "i.qcow2", "off").assertOk();
            List<String> args = new ArrayList<>(List.of("-f", "qcow2"));
            for (String c : io) {
                args.add("-c");
                args.add(c);
            }
            args.add("i.qcow2");
            qemuIo(d, args.toArray(new String[0])).assertOk();
            qemuImg(d, "bitmap", "--disable", "i.qcow2", "off").assertOk();
            dirs.add(d);
        }
        return dirs;
    }

    /** Runs the same resize on both twins and checks what qemu sees afterwards is the same. */
    private void resizeBoth(List<Path> d, String... args) {
        List<String> all = new ArrayList<>(List.of("resize"));
        all.addAll(List.of(args));
        all.add("i.qcow2");
        String size = all.remove(all.size() - 2);
        all.add(size);
        Qemu.Result ours = qcow4j(d.get(0), all.toArray(new String[0]));
        Qemu.Result theirs = qemuImg(d.get(1), all.toArray(new String[0]));
        assertEquals(theirs.exitCode(), ours.exitCode(), ours.describe() + "\n" + theirs.describe());
        assertEquals(theirs.stdout(), ours.stdout());
        assertEquals(theirs.stderr().replace("qemu-img:", "qcow4j:"), ours.stderr());
        JsonNode o = Cli.withoutAllocation(OverlayIT.info(d.get(0), "i.qcow2"));
        JsonNode t = Cli.withoutAllocation(OverlayIT.info(d.get(1), "i.qcow2"));
        ((com.fasterxml.jackson.databind.node.ObjectNode) o).remove("dirty-flag");
        ((com.fasterxml.jackson.databind.node.ObjectNode) t).remove("dirty-flag");
        assertEquals(t, o, String.join(" ", all));
        assertEquals(0, qemuImg(d.get(0), "compare", "i.qcow2", d.get(1).resolve("i.qcow2").toString()).exitCode());
        Cli.checkJson(d.get(0), "i.qcow2");
        for (String b : List.of("on", "off")) {
            // qemu-nbd loads the bitmap: its table must have the size the new disk size asks for
            assertEquals(Qemu.nbdMap(d.get(1).resolve("i.qcow2"), b), Qemu.nbdMap(d.get(0).resolve("i.qcow2"), b), b);
        }
    }

    @Test
    void growAndShrinkWithBitmapsAsQemuImg() {
        List<Path> d = twins("64M", "write -P 1 0 1M", "write -P 2 40M 1M", "write -P 3 63M 1M");
        resizeBoth(d, "+1G");
        for (Path dir : d) {
            qemuIo(dir, "-f", "qcow2", "-c", "write -P 4 1050M 64k", "i.qcow2").assertOk();
        }
        resizeBoth(d, "2G");
        resizeBoth(d, "--shrink", "-1984M");  // 64M again: the data at 1050M and the bits there go
        resizeBoth(d, "--shrink", "40M");     // cuts nothing in half: 40M is where data starts
        resizeBoth(d, "--shrink", "-q", "33M");
        resizeBoth(d, "+512");
    }

    @Test
    void refusalsAsQemuImgsAndTheFileUnchanged() throws IOException {
        List<Path> d = twins("64M", "write -P 1 60M 1M");
        byte[] before = Files.readAllBytes(d.get(0).resolve("i.qcow2"));
        for (String[] args : new String[][] {{"32M"}, {"-32M"}, {"+100"}, {"1000"}, {"--shrink", "0"},
                {"--shrink", "-5G"}, {"abc"}, {"99999999999999999999"}, {"+9E"}}) {
            List<String> all = new ArrayList<>(List.of("resize"));
            all.addAll(List.of(args).subList(0, args.length - 1));
            all.add("i.qcow2");
            all.add(args[args.length - 1]);
            String[] a = all.toArray(new String[0]);
            Qemu.Result theirs = qemuImg(d.get(1), a);
            Qemu.Result ours = qcow4j(d.get(0), a);
            assertEquals(1, theirs.exitCode(), theirs.describe());
            assertEquals(1, ours.exitCode(), ours.describe());
            if (theirs.stderr().lines().count() == 2 && theirs.stderr().contains("warning")) {
                assertEquals(theirs.stderr().replace("qemu-img:", "qcow4j:"), ours.stderr());
            } else {
                Cli.assertOneLineError(ours, 1, Cli.qemuMessage(theirs));
            }
            assertArrayEquals(before, Files.readAllBytes(d.get(0).resolve("i.qcow2")), String.join(" ", a));
        }
        Qemu.Result theirs = qemuImg(d.get(1), "resize", "i.qcow2");
        Cli.assertOneLineError(qcow4j(d.get(0), "resize", "i.qcow2"), 1,
                Cli.qemuMessage(theirs).replace(" Try 'qemu-img --help' for more information", ""));
        Cli.assertOneLineError(qcow4j(d.get(0), "resize", "nofile", "1G"), 1, "Could not open 'nofile': No such file or directory");
    }

    @Test
    void rawFilesAsQemuImg() throws IOException {
        List<Path> files = new ArrayList<>();
        for (String who : List.of("ours", "theirs")) {
            Path d = Cli.mkdir(tmp, who);
            Files.write(d.resolve("r.raw"), new byte[1000]);
            files.add(d.resolve("r.raw"));
        }
        for (String size : List.of("+1000", "5000", "+1M")) {
            Qemu.Result ours = qcow4j(files.get(0).getParent(), "resize", "-f", "raw", "r.raw", size);
            Qemu.Result theirs = qemuImg(files.get(1).getParent(), "resize", "-f", "raw", "r.raw", size).assertOk();
            assertEquals(0, ours.exitCode(), ours.describe());
            assertEquals(theirs.stdout(), ours.stdout());
            assertEquals(Files.size(files.get(1)), Files.size(files.get(0)), size);
        }
        Qemu.Result ours = qcow4j(files.get(0).getParent(), "resize", "-f", "raw", "--shrink", "r.raw", "-1M");
        qemuImg(files.get(1).getParent(), "resize", "-f", "raw", "--shrink", "r.raw", "-1M").assertOk();
        assertEquals(0, ours.exitCode(), ours.describe());
        assertEquals(Files.size(files.get(1)), Files.size(files.get(0)));
    }
}
