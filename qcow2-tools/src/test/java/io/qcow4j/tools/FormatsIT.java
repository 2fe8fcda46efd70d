package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Formats other than qcow2 and raw, wherever an image is opened or created. A name qemu-img
 * does not know, and a driver qemu-img cannot create images with: qemu-img's exact words
 * (drop-in mode compared line for line). A format qemu-img has and qcow4j lacks: qcow4j
 * says so in its own mode, and uses qemu-img's words for a missing driver as qemu-img;
 * a file probed as such a format is refused, never read as raw. Nothing is created or changed.
 */
class FormatsIT {
    @TempDir
    static Path tmp;
    static Path theirs;
    static Path ours;

    @BeforeAll
    static void images() {
        theirs = Cli.mkdir(tmp, "theirs");
        ours = Cli.mkdir(tmp, "ours");
        for (Path d : List.of(theirs, ours)) {
            Cli.qemuImg(d, "create", "-q", "-f", "qcow2", "base.qcow2", "1M").assertOk();
            Cli.qemuImg(d, "create", "-q", "-f", "qcow2", "t.qcow2", "1M").assertOk();
            for (String f : List.of("vmdk", "vpc", "vdi", "qed", "vhdx", "qcow", "parallels")) {
                Cli.qemuImg(d, "create", "-q", "-f", f, "x." + f, "1M").assertOk();
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "create -f F n.img 1M", "create -f F", "create -f F -o help", "create -f qcow2 -F F -b base.qcow2 n.img",
        "create -f qcow2 -o backing_fmt=F,backing_file=base.qcow2 n.img", "create -f qcow2 -u -F F -b base.qcow2 n.img 1M",
        "convert -O F t.qcow2 n.img", "convert -f F t.qcow2 n.img", "info -f F t.qcow2", "check -f F t.qcow2",
        "map -f F t.qcow2", "compare -f F t.qcow2 t.qcow2", "compare -F F t.qcow2 t.qcow2", "commit -f F t.qcow2",
        "resize -f F t.qcow2 2M", "bitmap -f F --add t.qcow2 b", "rebase -f F -b base.qcow2 -F qcow2 t.qcow2",
        "measure -f F t.qcow2", "measure -O F --size 1M", "dd -f F if=t.qcow2 of=n.img", "dd -O F if=t.qcow2 of=n.img",
        "bench -f F -c 1 t.qcow2",
    })
    void unknownNamesInQemuImgsWords(String line) throws IOException {
        for (String f : List.of("foo", "null-co")) {
            boolean creates = line.contains("-O F") || line.startsWith("create -f F");
            if (f.equals("null-co") && !creates) {
                continue; // qemu-img has a null-co driver to open with: its complaints are its own
            }
            String[] args = line.replace(" F ", " " + f + " ").replace("=F,", "=" + f + ",").replaceAll(" F$", " " + f)
                    .split(" ");
            byte[] before = Files.readAllBytes(ours.resolve("t.qcow2"));
            Cli.assertSameOutput(Cli.qemuImg(theirs, args), Cli.dropIn(ours, args), String.join(" ", args));
            assertArrayEquals(before, Files.readAllBytes(ours.resolve("t.qcow2")));
            assertEquals(Files.exists(theirs.resolve("n.img")), Files.exists(ours.resolve("n.img")), line);
            Files.deleteIfExists(theirs.resolve("n.img"));
            Files.deleteIfExists(ours.resolve("n.img"));
        }
    }

    /** Formats qemu-img has: qcow4j's refusal, one line; as qemu-img, the words of a qemu-img without the driver. */
    @ParameterizedTest
    @ValueSource(strings = {
        "create -f vmdk n.img 1M|n.img: |Unknown file format 'vmdk'",
        "convert -O vpc t.qcow2 n.img||Unknown file format 'vpc'",
        "info -f vdi t.qcow2|Could not open 't.qcow2': |Unknown driver 'vdi'",
        "compare -f qed t.qcow2 t.qcow2|Could not open 't.qcow2': |Unknown driver 'qed'",
        "dd -O vhdx if=t.qcow2 of=n.img||Unknown file format",
    })
    void formatsQemuHasAndQcow4jLacks(String spec) {
        String[] parts = spec.split("\\|", -1);
        String[] args = parts[0].split(" ");
        String format = parts[0].replaceAll(".*-[fOF] (\\S+).*", "$1");
        Qemu.Result own = Cli.qcow4j(ours, args);
        assertEquals(own.exitCode() == 2 ? 2 : 1, own.exitCode(), own.describe());
        Cli.assertOneLineError(own, own.exitCode(), parts[1] + "Format '" + format
                + "' is not supported by qcow4j (only qcow2 and raw)");
        Qemu.Result dropIn = Cli.dropIn(ours, args);
        assertEquals("qemu-img: " + parts[1] + parts[2] + "\n", dropIn.stderr(), dropIn.describe());
        assertFalse(Files.exists(ours.resolve("n.img")), spec);
    }

    /** A file in another format is not taken for a raw disk, in any command that probes. */
    @ParameterizedTest
    @ValueSource(strings = {"vmdk", "vpc", "vdi", "qed", "vhdx", "qcow", "parallels"})
    void probedForeignFilesAreRefused(String format) {
        String name = "x." + format;
        String why = "Could not open '" + name + "': Image is in " + format + " format, which qcow4j does not support"
                + " (only qcow2 and raw; -f raw reads the file as a raw disk)";
        Qemu.Result info = Cli.qemuImg(theirs, "info", name).assertOk();
        assertEquals(true, info.stdout().contains("file format: " + format + "\n"), info.describe());
        Cli.assertOneLineError(Cli.qcow4j(ours, "info", name), 1, why);
        Cli.assertOneLineError(Cli.qcow4j(ours, "convert", name, "n.img"), 1, why);
        Cli.assertOneLineError(Cli.qcow4j(ours, "measure", name), 1, why);
        assertFalse(Files.exists(ours.resolve("n.img")));
        // as a raw disk when asked to
        Cli.qcow4j(ours, "info", "-f", "raw", name).assertOk();
    }
}
