package io.qcow4j.core.compress;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.Inflater;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The codecs against the real decoders QEMU links: zlib through Python's {@code zlib} module with
 * QEMU's windowBits -12, zstd through the {@code zstd} command line tool.
 */
class InteropTest {

    static final int CS = 65536;
    static final long SEED = 4242L;

    /** Inflates argv[1] like QEMU (raw deflate, 4 KiB window) into argv[2]. */
    static final String PY_INFLATE = String.join("\n",
            "import sys, zlib",
            "d = zlib.decompressobj(-12)",
            "out = d.decompress(open(sys.argv[1], 'rb').read())",
            "open(sys.argv[2], 'wb').write(out)");

    /** Deflates argv[1] like QEMU's qcow2_zlib_compress (level default, windowBits -12, memLevel 9). */
    static final String PY_DEFLATE = String.join("\n",
            "import sys, zlib",
            "c = zlib.compressobj(-1, zlib.DEFLATED, -12, 9)",
            "data = open(sys.argv[1], 'rb').read()",
            "open(sys.argv[2], 'wb').write(c.compress(data) + c.flush())");

    @TempDir
    Path tmp;

    // ---- zlib ----

    @Test
    void pythonInflatesZlibCodecOutput() throws Exception {
        byte[] src = TestData.repeatedLetters(10 * 1024, CS, SEED);
        byte[] comp = new byte[CS - 1];
        int n = new ZlibCodec().compress(src, CS, comp);
        assertTrue(n > 0, "fits in a cluster: " + n);
        Result r = run(List.of("python3", "-c", PY_INFLATE), Arrays.copyOf(comp, n));
        assertEquals(0, r.exit, "python zlib.decompressobj(-12) failed: " + r.stderr);
        assertArrayEquals(src, r.output);
    }

    /** The check above can fail: a plain deflate stream of the same data is rejected. */
    @Test
    void pythonRejectsPlainDeflate() throws Exception {
        byte[] src = TestData.repeatedLetters(10 * 1024, CS, SEED);
        Deflater plain = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
        plain.setInput(src);
        plain.finish();
        byte[] comp = new byte[2 * CS];
        int n = plain.deflate(comp);
        assertTrue(plain.finished());
        plain.end();
        assertArrayEquals(src, inflate32k(comp, n), "a valid deflate stream for a 32 KiB window");
        Result r = run(List.of("python3", "-c", PY_INFLATE), Arrays.copyOf(comp, n));
        assertNotEquals(0, r.exit, "python must reject distances beyond 4 KiB");
        assertTrue(r.stderr.contains("invalid distance too far back"), r.stderr);
    }

    /** What QEMU writes, with a sector of garbage after it, is read back. */
    @Test
    void zlibCodecInflatesQemuStyleStream() throws Exception {
        byte[] src = TestData.HALF.make(CS, SEED);
        Result r = run(List.of("python3", "-c", PY_DEFLATE), src);
        assertEquals(0, r.exit, r.stderr);
        byte[] span = withGarbage(r.output);
        byte[] out = new byte[CS];
        new ZlibCodec().decompress(span, 0, span.length, out, CS);
        assertArrayEquals(src, out);
    }

    // ---- zstd ----

    @Test
    void zstdCliDecompressesZstdCodecOutput() throws Exception {
        assumeZstdCli();
        for (TestData data : List.of(TestData.PATTERN, TestData.HALF, TestData.ZERO)) {
            byte[] src = data.make(CS, SEED);
            byte[] comp = new byte[CS - 1];
            int n = new ZstdCodec().compress(src, CS, comp);
            assertTrue(n > 0);
            Result r = run(List.of("zstd", "-d", "-q", "-f"), Arrays.copyOf(comp, n));
            assertEquals(0, r.exit, "zstd -d failed: " + r.stderr);
            assertArrayEquals(src, r.output, data.toString());
        }
    }

    /** Frames from the CLI (with a checksum; from a file and from a pipe of unknown size) are read back. */
    @Test
    void zstdCodecDecompressesCliOutput() throws Exception {
        assumeZstdCli();
        byte[] src = TestData.HALF.make(CS, SEED);
        Path in = Files.write(tmp.resolve("plain"), src);
        for (List<String> cmd : List.of(
                List.of("zstd", "-q", "-c", in.toString()),
                List.of("sh", "-c", "cat \"$0\" | zstd -q -c", in.toString()))) {
            ProcessBuilder pb = new ProcessBuilder(cmd);
            Path out = tmp.resolve("cli.zst");
            pb.redirectOutput(out.toFile()).redirectErrorStream(false);
            Process p = pb.start();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "zstd timed out");
            assertEquals(0, p.exitValue(), String.join(" ", cmd));
            byte[] span = withGarbage(Files.readAllBytes(out));
            byte[] got = new byte[CS];
            new ZstdCodec().decompress(span, 0, span.length, got, CS);
            assertArrayEquals(src, got, String.join(" ", cmd));
        }
    }

    // ---- helpers ----

    static void assumeZstdCli() {
        boolean ok;
        try {
            Process p = new ProcessBuilder("zstd", "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            ok = p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            ok = false;
        }
        assumeTrue(ok, "the zstd CLI is not installed (apt-get install -y zstd): "
                + "skipping the zstd interop oracle");
    }

    /** The stream padded to the next sector boundary plus one more sector, with 0xA5 garbage. */
    static byte[] withGarbage(byte[] stream) {
        byte[] span = Arrays.copyOf(stream, ((stream.length + 511) & ~511) + 512);
        Arrays.fill(span, stream.length, span.length, (byte) 0xa5);
        return span;
    }

    static byte[] inflate32k(byte[] comp, int n) throws DataFormatException {
        Inflater inf = new Inflater(true);
        inf.setInput(comp, 0, n);
        byte[] out = new byte[CS];
        int pos = 0;
        while (pos < CS && !inf.finished()) {
            pos += inf.inflate(out, pos, CS - pos);
        }
        inf.end();
        return out;
    }

    record Result(int exit, byte[] output, String stderr) {
    }

    /** Runs {@code cmd input-file output-file} with a timeout; Python argv[1]/argv[2], or zstd's -o. */
    Result run(List<String> cmd, byte[] input) throws IOException, InterruptedException {
        Path in = Files.createTempFile(tmp, "in", ".bin");
        Path out = Files.createTempFile(tmp, "out", ".bin");
        Path err = Files.createTempFile(tmp, "err", ".txt");
        Files.write(in, input);
        List<String> full = new ArrayList<>(cmd);
        if (cmd.get(0).equals("zstd")) {
            full.addAll(List.of(in.toString(), "-o", out.toString()));
        } else {
            full.addAll(List.of(in.toString(), out.toString()));
        }
        Process p;
        try {
            p = new ProcessBuilder(full).redirectError(err.toFile()).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        } catch (IOException e) {
            assumeTrue(false, cmd.get(0) + " is not available: " + e.getMessage());
            throw e;
        }
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(full + " timed out");
        }
        return new Result(p.exitValue(), Files.readAllBytes(out), Files.readString(err, StandardCharsets.UTF_8));
    }
}
