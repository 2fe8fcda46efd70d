package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code qcow4j create} against {@code qemu-img create}: the same command line in two
 * directories ("q" for qemu-img, "j" for qcow4j) must print the same, exit the same, and
 * give images that {@code qemu-img info --output=json} describes the same (except
 * actual-size: which host clusters are written or left as holes is the writer's
 * business) and that {@code qemu-img check} finds clean.
 */
class CreateIT {
    @TempDir
    Path tmp;

    /** Each entry: the arguments after "create". */
    @ParameterizedTest
    @ValueSource(strings = {
        "-f qcow2 t.qcow2 1G",
        "-f qcow2 -o compat=0.10 t.qcow2 1G",
        "-f qcow2 -o compat=v2 t.qcow2 1M",
        "-f qcow2 -o compat=v3 t.qcow2 1M",
        "-f qcow2 -o compat=1.1 t.qcow2 1M",
        "-f qcow2 -o cluster_size=4k t.qcow2 100M",
        "-f qcow2 -o cluster_size=512 t.qcow2 8M",
        "-f qcow2 -o cluster_size=2M t.qcow2 1G",
        "-f qcow2 -o refcount_bits=1 t.qcow2 10M",
        "-f qcow2 -o refcount_bits=8 t.qcow2 10M",
        "-f qcow2 -o refcount_bits=64 t.qcow2 10M",
        "-f qcow2 -o lazy_refcounts=on t.qcow2 10M",
        "-f qcow2 -o lazy_refcounts=true t.qcow2 10M",
        "-f qcow2 -o extended_l2=on t.qcow2 10M",
        "-f qcow2 -o extended_l2=on,cluster_size=16k t.qcow2 10M",
        "-f qcow2 -o compression_type=zstd t.qcow2 10M",
        "-f qcow2 -o compression_type=zlib t.qcow2 10M",
        "-f qcow2 -o preallocation=off t.qcow2 10M",
        "-f qcow2 -o preallocation=metadata t.qcow2 10M",
        "-f qcow2 -o preallocation=metadata,cluster_size=4k t.qcow2 3M",
        "-f qcow2 -o data_file=t.data t.qcow2 10M",
        "-f qcow2 -o data_file=t.data,data_file_raw=on t.qcow2 10M",
        "-f qcow2 -o lazy_refcounts=on,refcount_bits=32,compression_type=zstd,cluster_size=8k t.qcow2 10M",
        "-f qcow2 -o cluster_size=64k -o refcount_bits=0x10 t.qcow2 10M",
        "-f qcow2 t.qcow2 1000",
        "-f qcow2 t.qcow2 1.5G",
        "-f qcow2 t.qcow2 0",
        "-q -f qcow2 t.qcow2 1M",
        "-f qcow2 -b base.qcow2 -F qcow2 t.qcow2",
        "-f qcow2 -b base.qcow2 -F qcow2 t.qcow2 5M",
        "-f qcow2 -o backing_file=base.qcow2,backing_fmt=qcow2 t.qcow2",
        "-f qcow2 -b base.raw -F raw t.qcow2",
        "-f qcow2 -u -b nosuch.qcow2 -F qcow2 t.qcow2 1M",
        "-f qcow2 -b base.qcow2 -F qcow2 -o extended_l2=on,preallocation=metadata t.qcow2", // overlay reads base
        "-f raw t.raw 10M",
        "-f raw t.raw 1000",
    })
    void sameAsQemuImg(String args) throws IOException {
        Path q = prepare("q");
        Path j = prepare("j");
        String[] argv = Cli.prepend("create", args.split(" "));
        Qemu.Result expected = qemuImg(q, argv);
        Qemu.Result actual = qcow4j(j, argv);
        assertEquals(0, expected.exitCode(), expected.describe());
        assertEquals(expected.stdout(), actual.stdout(), actual.describe());
        assertEquals(0, actual.exitCode(), actual.describe());
        assertEquals("", actual.stderr(), actual.describe());

        String image = args.contains("t.raw") ? "t.raw" : "t.qcow2";
        assertEquals(Cli.withoutAllocation(Cli.json(qemuImg(q, "info", "--output=json", image).assertOk().stdout())),
                Cli.withoutAllocation(Cli.json(qemuImg(j, "info", "--output=json", image).assertOk().stdout())));
        if (image.endsWith(".qcow2") && !args.contains("nosuch")) { // qemu-img opens no image without its backing
            Qemu.Result check = qemuImg(j, "check", image);
            assertEquals(0, check.exitCode(), check.describe());
            assertEquals(0, qemuImg(j, "compare", image, q.resolve(image).toString()).exitCode());
        } else {
            assertEquals(Files.size(q.resolve(image)), Files.size(j.resolve(image)));
        }
    }

    /** A backing file of each kind in the directory, as both runs need it. */
    private Path prepare(String name) {
        Path dir = Cli.mkdir(tmp, name);
        qemuImg(dir, "create", "-q", "-f", "qcow2", "base.qcow2", "3M").assertOk();
        Cli.qemuIo(dir, "-c", "write -P 0x5a 0 1M", "base.qcow2").assertOk();
        qemuImg(dir, "create", "-q", "-f", "raw", "base.raw", "2M").assertOk();
        return dir;
    }

    /**
     * Refused command lines: qemu-img's message (several lines joined), exit 1, the same
     * stdout ("Formatting" comes before the option combinations are checked), and nothing
     * left on disk by qcow4j.
     */
    @ParameterizedTest
    @ValueSource(strings = {
        "-f qcow2 t.qcow2 abc",
        "-f qcow2 t.qcow2 1x",
        "-f qcow2 t.qcow2 1.5",
        "-f qcow2 t.qcow2 8E",
        "-f qcow2 t.qcow2 99999999999999999999",
        "-f qcow2 -o foo=bar t.qcow2 1M",
        "-f qcow2 -o cluster_size=abc t.qcow2 1M",
        "-f qcow2 -o refcount_bits=abc t.qcow2 1M",
        "-f qcow2 -o lazy_refcounts=maybe t.qcow2 1M",
        "-f qcow2 -o ,compat=1.1 t.qcow2 1M",
        "-f qcow2 -o compat=1.1, t.qcow2 1M",
        "-f qcow2 -o size=1M t.qcow2 1M",
        "-f qcow2 -o cluster_size=1000 t.qcow2 1M",
        "-f qcow2 -o cluster_size=4M t.qcow2 1M",
        "-f qcow2 -o refcount_bits=3 t.qcow2 1M",
        "-f qcow2 -o refcount_bits=128 t.qcow2 1M",
        "-f qcow2 -o compat=2 t.qcow2 1M",
        "-f qcow2 -o compression_type=lz4 t.qcow2 1M",
        "-f qcow2 -o preallocation=foo t.qcow2 1M",
        "-f qcow2 -o compat=0.10,lazy_refcounts=on t.qcow2 1M",
        "-f qcow2 -o compat=0.10,extended_l2=on t.qcow2 1M",
        "-f qcow2 -o compat=0.10,refcount_bits=8 t.qcow2 1M",
        "-f qcow2 -o compat=0.10,compression_type=zstd t.qcow2 1M",
        "-f qcow2 -o compat=0.10,data_file=x.data t.qcow2 1M",
        "-f qcow2 -o extended_l2=on,cluster_size=8k t.qcow2 1M",
        "-f qcow2 -o data_file_raw=on t.qcow2 1M",
        "-f qcow2 -o backing_fmt=qcow2 t.qcow2 1M",
        "-f qcow2 -o backing_file= t.qcow2 1M",
        "-f qcow2 -b base.qcow2 -F qcow2 -o preallocation=metadata t.qcow2",
        "-f qcow2 -b base.qcow2 -F qcow2 -o data_file=x.data,data_file_raw=on t.qcow2",
        "-f qcow2 -b base.qcow2 t.qcow2 1M",
        "-f qcow2 -b nosuch.qcow2 -F qcow2 t.qcow2 1M",
        "-f qcow2 -u -b nosuch.qcow2 -F qcow2 t.qcow2",
        "-f qcow2 -b t.qcow2 -F qcow2 -u t.qcow2 1M",
        "-f qcow2 t.qcow2",
        "-f raw -b base.qcow2 -F qcow2 t.qcow2 1M",
        "-f raw -o cluster_size=4k t.qcow2 1M",
        "-f foo t.qcow2 1M",
        "-f qcow2 t.qcow2 1M 2M",
    })
    void refusedLikeQemuImg(String args) {
        Path q = prepare("q");
        Path j = prepare("j");
        String[] argv = Cli.prepend("create", args.split(" "));
        Qemu.Result expected = qemuImg(q, argv);
        Qemu.Result actual = qcow4j(j, argv);
        assertEquals(1, expected.exitCode(), expected.describe());
        String message = Cli.qemuMessage(expected).replaceFirst(" Detected format of qcow2\\.$", "")
                .replaceFirst(" Could not open backing image\\.$", "")
                .replaceFirst(" Try 'qemu-img --help' for more information$", "");
        Cli.assertOneLineError(actual, 1, message);
        assertEquals(expected.stdout(), actual.stdout(), actual.describe());
        assertFalse(Files.exists(j.resolve("t.qcow2")), "left a file behind");
    }

    @Test
    void optionHelpListsOptions() {
        Qemu.Result r = qcow4j(tmp, "create", "-f", "qcow2", "-o", "help", "t.qcow2").assertOk();
        assertTrue(r.stdout().startsWith("Supported options:\n"), r.describe());
        List<String> names = new ArrayList<>();
        r.stdout().lines().skip(1).forEach(l -> names.add(l.trim().split("=")[0]));
        assertEquals(List.of("backing_file", "backing_fmt", "cluster_size", "compat", "compression_type",
                "data_file", "data_file_raw", "encrypt.cipher-alg", "encrypt.cipher-mode", "encrypt.format",
                "encrypt.hash-alg", "encrypt.iter-time", "encrypt.ivgen-alg", "encrypt.ivgen-hash-alg",
                "encrypt.key-secret", "encryption", "extended_l2", "extent_size_hint", "lazy_refcounts", "nocow",
                "preallocation", "refcount_bits", "size"), names);
        // without a file name: the format's options and qemu-img's hint, in qemu-img's words
        for (String fmt : List.of("qcow2", "raw")) {
            String ours = qcow4j(tmp, "create", "-f", fmt, "-o", "help").assertOk().stdout();
            List<String> qemu = qemuImg(tmp, "create", "-f", fmt, "-o", "help").assertOk().stdout().lines().toList();
            for (String line : ours.lines().toList()) {
                assertTrue(qemu.contains(line), "qemu-img has no line '" + line + "'");
            }
            assertTrue(ours.endsWith("\nThe protocol level may support further options.\n"
                    + "Specify the target filename to include those options.\n"), ours);
        }
        assertTrue(!Files.exists(tmp.resolve("t.qcow2")));
    }

    /** Deliberately unlike qemu-img (whose default is raw): qcow4j creates qcow2 unless told -f raw. */
    @Test
    void defaultFormatIsQcow2() {
        Qemu.Result r = qcow4j(tmp, "create", "t.qcow2", "64M").assertOk();
        assertTrue(r.stdout().startsWith("Formatting 't.qcow2', fmt=qcow2 "), r.describe());
        assertEquals("qcow2", Cli.json(qemuImg(tmp, "info", "--output=json", "t.qcow2").stdout()).get("format").asText());
    }

    @Test
    void existingFileIsReplaced() throws IOException {
        Files.write(tmp.resolve("t.qcow2"), new byte[5 << 20]);
        qcow4j(tmp, "create", "-q", "-f", "qcow2", "t.qcow2", "1M").assertOk();
        assertEquals(0, qemuImg(tmp, "check", "t.qcow2").exitCode());
        assertTrue(Files.size(tmp.resolve("t.qcow2")) < (1 << 20));
    }
}
