package io.qcow4j.testing;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The oracle harness itself does what the other tests rely on. */
class QemuHarnessTest {
    @TempDir
    Path tmp;

    @Test
    void runCapturesBothStreamsAndTheExitCode() {
        Qemu.Result r = Qemu.run("sh", "-c", "echo out; echo err >&2; exit 3");
        assertEquals(3, r.exitCode());
        assertEquals("out\n", r.stdout());
        assertEquals("err\n", r.stderr());
        AssertionError e = assertThrows(AssertionError.class, r::assertOk);
        assertTrue(e.getMessage().contains("out") && e.getMessage().contains("err"), e.getMessage());
    }

    @Test
    void runKillsOnTimeout() {
        long t0 = System.nanoTime();
        assertThrows(AssertionError.class, () -> Qemu.run(Duration.ofMillis(300), "sleep", "30"));
        assertTrue(System.nanoTime() - t0 < 10_000_000_000L);
    }

    @Test
    void patternsMatchQemuIo() throws Exception {
        Path raw = tmp.resolve("p.raw");
        Qemu.qemuImg("create", "-q", "-f", "raw", raw.toString(), "64k").assertOk();
        Qemu.qemuIo("-f", "raw", "-c", "write -P 0xa5 4096 8192", raw.toString()).assertOk();
        byte[] expected = new byte[65536];
        Patterns.fill(expected, 4096, 8192, 0xa5);
        assertArrayEquals(expected, Files.readAllBytes(raw));
        assertTrue(Qemu.qemuIo("-f", "raw", "-c", "write -P 0x1a5 0 1", raw.toString())
                .stdout().contains("not a valid pattern byte"));
        assertThrows(IllegalArgumentException.class, () -> Patterns.pattern(0x1a5, 1));

        ByteBuffer bb = ByteBuffer.allocate(16).position(4);
        Patterns.fill(bb, 0xcd);
        assertEquals(4, bb.position());
        assertEquals(0, bb.get(3));
        assertEquals((byte) 0xcd, bb.get(15));
        assertEquals(-1, Patterns.firstMismatch(expected, 4096, 8192, 0xa5));
        assertTrue(Patterns.matches(Patterns.pattern(0x42, 100), 0x42));
    }

    @Test
    void randomIsReproducible() {
        assertArrayEquals(Patterns.random(7, 1000), Patterns.random(7, 1000));
        assertFalse(java.util.Arrays.equals(Patterns.random(7, 1000), Patterns.random(8, 1000)));
    }

    @Test
    void copyToTempBringsTheChainAlong() {
        assertEquals(List.of("chain-top.qcow2", "chain-mid.qcow2", "chain-base.qcow2"),
                TestData.withReferencedFiles("chain-top.qcow2"));
        assertEquals(List.of("data-file.qcow2", "data-file.data"), TestData.withReferencedFiles("data-file.qcow2"));
        assertEquals(List.of("raw-backed.qcow2", "raw-backing.raw"), TestData.withReferencedFiles("raw-backed.qcow2"));

        Path top = TestData.copyToTemp("chain-top.qcow2", tmp);
        assertEquals("chain-mid.qcow2", Qemu.infoJson(top).path("backing-filename").asText());
        assertTrue(Qemu.compare(top, TestData.image("chain-top.qcow2")));
        assertFalse(Qemu.compare(top, TestData.image("chain-mid.qcow2")));
        Qemu.io(top, "read -P 0xb1 256k 64k", "read -P 0x62 196k 4k", "read -P 0 0 64k").assertOk();
        assertEquals(1, Qemu.io(top, "read -P 0x55 0 4k").exitCode());
    }

    @Test
    void relativeDataFileResolvesBesideTheImage() {
        // qemu opens a relative data file name from its working directory: the helpers run there
        Path img = TestData.copyToTemp("data-file.qcow2", tmp);
        Qemu.check(img).assertOk();
        Qemu.io(img, "read -P 0xd1 0 16k", "read -P 0 16k 8k", "read -P 0xd1 24k 40k", "read -P 0xd3 508k 4k").assertOk();
        assertEquals(1, Qemu.run("qemu-img", "check", img.toString()).exitCode(), "from the JVM's directory");
    }

    @Test
    void createConvertAndCheck() throws Exception {
        Path img = tmp.resolve("new.qcow2");
        Qemu.create(img, "1M", "cluster_size=4k", "lazy_refcounts=on");
        assertEquals(4096, Qemu.infoJson(img).path("cluster-size").asInt());
        Qemu.io(img, "write -P 0x33 8k 4k").assertOk();
        Qemu.check(img).assertOk();
        assertEquals(0, Qemu.checkJson(img).path("check-errors").asInt());

        Path raw = tmp.resolve("new.raw");
        Qemu.convertToRaw(img, raw);
        byte[] b = Files.readAllBytes(raw);
        assertEquals(1 << 20, b.length);
        assertEquals(-1, Patterns.firstMismatch(b, 8192, 4096, 0x33));
        assertTrue(Qemu.compare(img, raw));
        assertThrows(AssertionError.class, () -> Qemu.compare(img, tmp.resolve("missing.qcow2")));
    }

    @Test
    void nbdMapShowsTheDirtyBitmap() {
        Path img = TestData.copyToTemp("bitmaps.qcow2", tmp);
        String map = Qemu.nbdMap(img, "b-disabled");
        // written while b-disabled was enabled: 3M+64k and 5M+100k..5M+200k, 128k granules
        assertEquals("""
                         0     3145728    0  clean
                   3145728      131072    1  dirty
                   3276800     1966080    0  clean
                   5242880      262144    1  dirty
                   5505024    11272192    0  clean
                """, map);
        assertNotEquals(map, Qemu.nbdMap(img, "b-enabled"));
        // the export is gone: the image can be opened read-write again
        Qemu.io(img, "write -P 1 0 512").assertOk();
    }
}
