package io.qcow4j.core.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.api.UnsupportedImageException;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LUKS images (encrypt.format=luks) made by qemu-img, read and written by qcow4j, and
 * read back by qemu-io with the same secret. A low iter-time keeps PBKDF2 quick.
 */
class LuksImageTest {
    static final String SECRET = "abc";

    static Path qemuLuks(Path dir, String name, String size) {
        return qemuLuks(dir, name, size, "");
    }

    /** {@code more}: further -o options (",encrypt.cipher-alg=aes-128", ...). */
    static Path qemuLuks(Path dir, String name, String size, String more) {
        return QemuLuksImages.copy(dir.resolve(name), size, more);
    }

    static String opts(Path img) {
        return "driver=qcow2,file.filename=" + img + ",encrypt.key-secret=sec0";
    }

    static Qemu.Result qemuIo(Path img, String... cmds) {
        String[] args = new String[5 + 2 * cmds.length];
        args[0] = "qemu-io";
        args[1] = "--object";
        args[2] = "secret,id=sec0,data=" + SECRET;
        args[3] = "--image-opts";
        args[4] = opts(img);
        for (int i = 0; i < cmds.length; i++) {
            args[5 + 2 * i] = "-c";
            args[6 + 2 * i] = cmds[i];
        }
        return Qemu.run(args);
    }

    static OpenOptions withSecret(OpenOptions o) {
        return o.encryptionSecret(SECRET.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void readsWhatQemuWrote(@TempDir Path tmp) throws IOException {
        Path img = qemuLuks(tmp, "q.qcow2", "4M");
        qemuIo(img, "write -P 0xab 0 64k", "write -P 0xcd 70000 1000", "write -P 0x11 3M 4097").assertOk();
        try (Qcow2Image q = Qcow2Image.open(img, withSecret(OpenOptions.readOnly()))) {
            assertTrue(q.info().encrypted());
            assertEquals("aes-256", q.luks().header().cipherAlg());
            assertArrayEquals(fill(65536, 0xab), read(q, 0, 65536));
            byte[] mid = read(q, 69999, 1002);
            assertEquals(0, mid[0]);
            assertArrayEquals(fill(1000, 0xcd), Arrays.copyOfRange(mid, 1, 1001));
            assertEquals(0, mid[1001]);
            assertArrayEquals(fill(4097, 0x11), read(q, 3L << 20, 4097));
            assertArrayEquals(new byte[8192], read(q, 2L << 20, 8192));
        }
    }

    @Test
    void writesQemuReadsBack(@TempDir Path tmp) throws IOException {
        Path img = qemuLuks(tmp, "w.qcow2", "4M");
        qemuIo(img, "write -P 0x22 0 128k").assertOk();
        try (Qcow2Image q = Qcow2Image.open(img, withSecret(OpenOptions.readWrite()))) {
            q.write(1000, ByteBuffer.wrap(fill(3000, 0x33)));          // partial sectors, in place
            q.write(2L << 20, ByteBuffer.wrap(fill(70000, 0x44)));     // new clusters
            q.write((3L << 20) + 511, ByteBuffer.wrap(fill(2, 0x55)));  // across a sector boundary of a new cluster
        }
        qemuIo(img, "read -P 0x22 0 1000", "read -P 0x33 1000 3000", "read -P 0x22 4000 127072",
                "read -P 0x44 2M 70000", "read -P 0 3M 511", "read -P 0x55 3146239 2", "read -P 0 3146241 1000")
                .assertOk();
        Qemu.qemuImg("check", "--object", "secret,id=sec0,data=" + SECRET, "--image-opts", opts(img)).assertOk();
    }

    /** QEMU's other key sizes, hashes and the 32-bit "plain" IV, read and written (created by qemu-img, written by qemu-io). */
    @Test
    void otherAlgorithms(@TempDir Path tmp) throws IOException {
        // one image for three of them (qemu-img create costs 2 s): a 128-bit key, sha512, the 32-bit IV
        String[] p = "aes-128,sha512,plain".split(",");
        Path img = qemuLuks(tmp, "a.qcow2", "4M", ",encrypt.cipher-alg=" + p[0] + ",encrypt.hash-alg=" + p[1]
                + ",encrypt.ivgen-alg=" + p[2]);
        qemuIo(img, "write -P 0x42 4096 70000").assertOk();
        try (Qcow2Image q = Qcow2Image.open(img, withSecret(OpenOptions.readWrite()))) {
            assertEquals(p[0], q.luks().header().cipherAlg());
            assertEquals(p[1], q.luks().header().hashSpec);
            assertArrayEquals(fill(70000, 0x42), read(q, 4096, 70000));
            q.write(100, ByteBuffer.wrap(fill(10, 0x43)));
        }
        qemuIo(img, "read -P 0x43 100 10", "read -P 0x42 4096 70000").assertOk();
    }

    @Test
    void refusals(@TempDir Path tmp) throws IOException {
        Path img = qemuLuks(tmp, "r.qcow2", "4M");
        qemuIo(img, "write -P 0x66 0 4k").assertOk();
        var e = assertThrows(UnsupportedImageException.class, () -> Qcow2Image.open(img, OpenOptions.readOnly()));
        assertEquals("Parameter 'encrypt.key-secret' is required for cipher", e.getMessage());
        e = assertThrows(UnsupportedImageException.class, () -> Qcow2Image.open(img,
                OpenOptions.readOnly().encryptionSecret("abd".getBytes(StandardCharsets.UTF_8))));
        assertEquals("Invalid password, cannot unlock any keyslot", e.getMessage());
        try (Qcow2Image q = Qcow2Image.open(img, OpenOptions.readOnly().withoutDecryption(true))) {
            assertEquals(8, q.luks().header().slots.length);
            assertThrows(IOException.class, () -> read(q, 0, 512));
        }
    }

    static byte[] read(Qcow2Image q, long off, int len) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(len);
        q.read(off, b);
        return b.array();
    }

    static byte[] fill(int n, int v) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) v);
        return b;
    }
}
