package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code qcow4j convert} against {@code qemu-img convert}: to raw the output must be byte
 * for byte qemu-img's; to qcow2 qemu-img must find it clean, with the options asked for,
 * reading the same as the source; -c must leave compressed clusters.
 */
class ConvertIT {
    @TempDir
    Path tmp;

    static Stream<String> referenceImages() {
        return TestData.qcow2Images().stream();
    }

    @ParameterizedTest
    @MethodSource("referenceImages")
    void toRawIsByteIdentical(String name) throws IOException {
        TestData.copyToTemp(name, tmp);
        qemuImg(tmp, "convert", "-O", "raw", name, "q.raw").assertOk();
        Qemu.Result r = qcow4j(tmp, "convert", "-O", "raw", name, "j.raw");
        assertEquals(0, r.exitCode(), r.describe());
        assertEquals("", r.stdout());
        // the only thing said: that the source's bitmaps stay behind
        assertTrue(r.stderr().isEmpty() || r.stderr().matches("qcow4j: warning: '" + name + "' has bitmaps, [^\n]*\n"), r.stderr());
        assertEquals(Files.size(tmp.resolve("q.raw")), Files.size(tmp.resolve("j.raw")));
        assertEquals(-1, Files.mismatch(tmp.resolve("q.raw"), tmp.resolve("j.raw")), "content differs");
    }

    @ParameterizedTest
    @MethodSource("referenceImages")
    void toQcow2ReadsTheSame(String name) {
        TestData.copyToTemp(name, tmp);
        qcow4j(tmp, "convert", "-O", "qcow2", name, "j.qcow2").assertOk();
        assertEquals(0, qemuImg(tmp, "check", "j.qcow2").exitCode());
        assertEquals(0, qemuImg(tmp, "compare", name, "j.qcow2").exitCode());
        // what a qemu-img convert makes, apart from where the clusters landed
        qemuImg(tmp, "convert", "-O", "qcow2", name, "q.qcow2").assertOk();
        assertEquals(infoWithoutName(tmp, "q.qcow2"), infoWithoutName(tmp, "j.qcow2"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"cluster_size=4k", "compat=0.10", "extended_l2=on", "compression_type=zstd",
        "refcount_bits=1,lazy_refcounts=on", "cluster_size=2M", "preallocation=metadata"})
    void targetOptions(String options) {
        TestData.copyToTemp("chain-top.qcow2", tmp);
        qemuImg(tmp, "convert", "-O", "qcow2", "-o", options, "chain-top.qcow2", "q.qcow2").assertOk();
        qcow4j(tmp, "convert", "-O", "qcow2", "-o", options, "chain-top.qcow2", "j.qcow2").assertOk();
        assertEquals(0, qemuImg(tmp, "check", "j.qcow2").exitCode());
        assertEquals(0, qemuImg(tmp, "compare", "q.qcow2", "j.qcow2").exitCode());
        assertEquals(infoWithoutName(tmp, "q.qcow2"), infoWithoutName(tmp, "j.qcow2"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"compression_type=zlib", "compression_type=zstd", "cluster_size=4k"})
    void compressed(String options) {
        TestData.copyToTemp("zlib-compressed.qcow2", tmp);
        qcow4j(tmp, "convert", "-c", "-O", "qcow2", "-o", options, "zlib-compressed.qcow2", "j.qcow2").assertOk();
        JsonNode check = Cli.checkJson(tmp, "j.qcow2");
        assertTrue(check.get("compressed-clusters").asInt() > 0, check.toString());
        assertEquals(0, qemuImg(tmp, "compare", "zlib-compressed.qcow2", "j.qcow2").exitCode());
    }

    @Test
    void rawSources() throws IOException {
        qemuImg(tmp, "create", "-q", "-f", "raw", "src.raw", "3000000").assertOk();
        Cli.qemuIo(tmp, "-f", "raw", "-c", "write -P 0x31 0 100k", "-c", "write -P 0 100k 100k",
                "-c", "write -P 0x32 2999000 1000", "src.raw").assertOk();
        qcow4j(tmp, "convert", "-f", "raw", "-O", "qcow2", "src.raw", "j.qcow2").assertOk();
        assertEquals(0, qemuImg(tmp, "check", "j.qcow2").exitCode());
        assertEquals(0, qemuImg(tmp, "compare", "src.raw", "j.qcow2").exitCode());
        qemuImg(tmp, "convert", "-O", "qcow2", "src.raw", "q.qcow2").assertOk();
        assertEquals(infoWithoutName(tmp, "q.qcow2"), infoWithoutName(tmp, "j.qcow2"));
        qcow4j(tmp, "convert", "src.raw", "j.raw").assertOk(); // default target: raw, as qemu-img
        qemuImg(tmp, "convert", "src.raw", "q.raw").assertOk();
        assertEquals(-1, Files.mismatch(tmp.resolve("q.raw"), tmp.resolve("j.raw")));
    }

    @Test
    void progressAndOverwrite() throws IOException {
        TestData.copyToTemp("chain-top.qcow2", tmp);
        Files.write(tmp.resolve("j.raw"), new byte[40 << 20]);
        Qemu.Result r = qcow4j(tmp, "convert", "-p", "-O", "raw", "chain-top.qcow2", "j.raw").assertOk();
        assertTrue(r.stdout().startsWith("    (0.00/100%)\r"), r.describe());
        assertTrue(r.stdout().endsWith("    (100.00/100%)\r\n"), r.describe());
        qemuImg(tmp, "convert", "-O", "raw", "chain-top.qcow2", "q.raw").assertOk();
        assertEquals(-1, Files.mismatch(tmp.resolve("q.raw"), tmp.resolve("j.raw")));
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "convert nosuch.qcow2 x.raw",
        "convert -O foo empty.qcow2 x.foo",
        "convert -c -O raw empty.qcow2 x.raw",
        "convert -O qcow2 -o foo=bar empty.qcow2 x.qcow2",
        "convert -f foo empty.qcow2 x.raw",
    })
    void refusedLikeQemuImg(String args) {
        TestData.copyToTemp("empty.qcow2", tmp);
        Qemu.Result expected = qemuImg(tmp, args.split(" "));
        Qemu.Result actual = qcow4j(tmp, args.split(" "));
        assertEquals(1, expected.exitCode());
        String message = Cli.qemuMessage(expected).replace("Could not open 'nosuch.qcow2': Could not open",
                "Could not open");
        Cli.assertOneLineError(actual, 1, message);
    }

    private static JsonNode infoWithoutName(Path dir, String image) {
        JsonNode info = Cli.withoutAllocation(Cli.json(qemuImg(dir, "info", "--output=json", image)
                .assertOk().stdout()));
        ((com.fasterxml.jackson.databind.node.ObjectNode) info).remove("filename");
        return info;
    }
}
