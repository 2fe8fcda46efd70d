package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.storage.ImageLock;
import io.qcow4j.core.storage.ImageLock.LockedException;
import io.qcow4j.core.storage.LockMechanisms;
import io.qcow4j.testing.Holder;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * QEMU's image locks, against the real qemu-io and qemu-img: a qemu-io holding an image
 * (as a running VM does) keeps qcow4j out, qcow4j holding one keeps them out, with QEMU's
 * messages, and nothing of a refused image changes. Each case runs with Linux OFD locks
 * (QEMU's own kind, the default) and with the POSIX fallback (Java's FileLock).
 */
class LockingTest {
    private static final String WRITE = "Failed to get \"write\" lock";
    private static final String SHARED_WRITE = "Failed to get shared \"write\" lock";

    @TempDir
    Path tmp;

    @AfterEach
    void defaultMechanism() {
        LockMechanisms.use(null);
    }

    private Path image(String name) {
        Path img = tmp.resolve(name);
        Qemu.qemuImg("create", "-q", "-f", "qcow2", img.toString(), "4M").assertOk();
        Qemu.io(img, "write -P 0x5a 0 64k").assertOk();
        return img;
    }

    private static String hint(Path img) {
        return "\nIs another process using the image [" + img + "]?";
    }

    /** qemu's error without its "program: context: " prefix, lines kept. */
    private static String qemuReason(Qemu.Result r, String prefix) {
        String err = r.stderr().strip();
        assertTrue(err.startsWith(prefix), r.describe());
        return err.substring(prefix.length());
    }

    private static IOException refused(Path img, OpenOptions options) {
        return assertThrows(IOException.class, () -> Qcow2Image.open(img, options).close());
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"ofd", "posix"})
    void qemuWriterKeepsUsOut(String mechanism) throws IOException {
        LockMechanisms.use(mechanism);
        Path img = image("disk.qcow2");
        byte[] before = Files.readAllBytes(img);
        try (Holder vm = Holder.qemuIo(img)) {
            // read-write: what a second qemu-io says
            IOException rw = refused(img, OpenOptions.readWrite());
            assertTrue(rw instanceof LockedException, rw.toString());
            assertEquals(WRITE + hint(img), rw.getMessage());
            Qemu.Result qemuRw = Qemu.qemuIo("-c", "quit", img.toString());
            assertEquals(1, qemuRw.exitCode(), qemuRw.describe());
            assertEquals(qemuReason(qemuRw, "qemu-io: can't open device " + img + ": "), rw.getMessage());

            // read-only: refused too, as qemu-img info without -U
            IOException ro = refused(img, OpenOptions.readOnly());
            assertEquals(SHARED_WRITE + hint(img), ro.getMessage());
            Qemu.Result info = Qemu.qemuImg("info", img.toString());
            assertEquals(1, info.exitCode(), info.describe());
            assertEquals(qemuReason(info, "qemu-img: Could not open '" + img + "': "), ro.getMessage());

            // force-share: reads the image anyway, as qemu-img info -U
            try (Qcow2Image shared = Qcow2Image.open(img, OpenOptions.readOnly().forceShare(true))) {
                ByteBuffer b = ByteBuffer.allocate(512);
                shared.read(0, b);
                for (byte x : b.array()) {
                    assertEquals(0x5a, x);
                }
            }
            // ... and never for writing
            IllegalArgumentException fs = assertThrows(IllegalArgumentException.class,
                    () -> Qcow2Image.open(img, OpenOptions.readWrite().forceShare(true)));
            Qemu.Result qemuFs = Qemu.qemuIo("-U", "-c", "quit", img.toString());
            assertEquals(qemuReason(qemuFs, "qemu-io: can't open device " + img + ": "), fs.getMessage());

            // create over it: refused before anything is emptied, as qemu-img create
            IOException create = assertThrows(IOException.class,
                    () -> Qcow2Image.create(img, CreateOptions.size(1 << 20)).close());
            assertEquals(WRITE + hint(img), create.getMessage());
            IOException createRaw = assertThrows(IOException.class, () -> RawImage.create(img, 1 << 20).close());
            assertEquals(WRITE + hint(img), createRaw.getMessage());
            Qemu.Result qemuCreate = Qemu.qemuImg("create", "-q", "-f", "qcow2", img.toString(), "1M");
            assertEquals(qemuReason(qemuCreate, "qemu-img: " + img + ": "), create.getMessage());

            assertArrayEquals(before, Files.readAllBytes(img), "a refused image changed");
        }
        // qemu-io gone: its locks went with it
        try (Qcow2Image img2 = Qcow2Image.open(img, OpenOptions.readWrite())) {
            assertEquals(4 << 20, img2.size());
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"ofd", "posix"})
    void qemuReaderLetsUsRead(String mechanism) throws IOException {
        LockMechanisms.use(mechanism);
        Path img = image("disk.qcow2");
        try (Holder reader = Holder.qemuIo(img, "-r")) {
            try (Qcow2Image ro = Qcow2Image.open(img, OpenOptions.readOnly())) {
                assertEquals(4 << 20, ro.size());
            }
            IOException rw = refused(img, OpenOptions.readWrite());
            assertEquals(WRITE + hint(img), rw.getMessage());
            Qemu.Result qemuRw = Qemu.qemuIo("-c", "quit", img.toString());
            assertEquals(qemuReason(qemuRw, "qemu-io: can't open device " + img + ": "), rw.getMessage());
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"ofd", "posix"})
    void ourWriterKeepsQemuOut(String mechanism) throws IOException {
        LockMechanisms.use(mechanism);
        Path img = image("disk.qcow2");
        try (Qcow2Image ours = Qcow2Image.open(img, OpenOptions.readWrite())) {
            ours.write(0, ByteBuffer.wrap(new byte[512]));
            Qemu.Result info = Qemu.qemuImg("info", img.toString());
            assertEquals(1, info.exitCode(), info.describe());
            assertEquals("qemu-img: Could not open '" + img + "': " + SHARED_WRITE + hint(img) + "\n", info.stderr());
            Qemu.Result infoU = Qemu.qemuImg("info", "-U", img.toString());
            assertEquals(0, infoU.exitCode(), infoU.describe());
            Qemu.Result write = Qemu.qemuIo("-c", "write 0 512", img.toString());
            assertEquals(1, write.exitCode(), write.describe());
            assertEquals("qemu-io: can't open device " + img + ": " + WRITE + hint(img) + "\n", write.stderr());
            Qemu.Result read = Qemu.qemuIo("-r", "-c", "read 0 512", img.toString());
            assertEquals(1, read.exitCode(), read.describe());
            assertTrue(read.stderr().contains(SHARED_WRITE), read.describe());
            Qemu.Result readU = Qemu.qemuIo("-r", "-U", "-c", "read 0 512", img.toString());
            assertEquals(0, readU.exitCode(), readU.describe());
        }
        // closed: QEMU may have it
        Qemu.io(img, "write -P 0x11 0 512", "read -P 0x11 0 512").assertOk();
        assertEquals(0, Qemu.check(img).exitCode());
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"ofd", "posix"})
    void ourReaderLetsQemuRead(String mechanism) throws IOException {
        LockMechanisms.use(mechanism);
        Path img = image("disk.qcow2");
        try (Qcow2Image ours = Qcow2Image.open(img, OpenOptions.readOnly())) {
            Qemu.qemuImg("info", img.toString()).assertOk();
            Qemu.qemuIo("-r", "-c", "read -P 0x5a 0 512", img.toString()).assertOk();
            Qemu.Result write = Qemu.qemuIo("-c", "write 0 512", img.toString());
            assertEquals(1, write.exitCode(), write.describe());
            assertTrue(write.stderr().contains(WRITE + hint(img)), write.describe());
            assertEquals(4 << 20, ours.size());
        }
    }

    @Test
    void forceShareTakesNoLocks() throws IOException {
        Path img = image("disk.qcow2");
        try (Qcow2Image ours = Qcow2Image.open(img, OpenOptions.readOnly().forceShare(true))) {
            // like qemu-img info -U: a VM starting meanwhile is not disturbed
            Qemu.io(img, "write -P 0x22 0 512").assertOk();
            assertEquals(4 << 20, ours.size());
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"ofd", "posix"})
    void twoOpensInOneJvm(String mechanism) throws IOException {
        LockMechanisms.use(mechanism);
        Path img = image("disk.qcow2");
        try (Qcow2Image rw = Qcow2Image.open(img, OpenOptions.readWrite())) {
            assertEquals(WRITE + hint(img), refused(img, OpenOptions.readWrite()).getMessage());
            assertEquals(SHARED_WRITE + hint(img), refused(img, OpenOptions.readOnly()).getMessage());
            try (Qcow2Image u = Qcow2Image.open(img, OpenOptions.readOnly().forceShare(true))) {
                assertEquals(rw.size(), u.size());
            }
        }
        try (Qcow2Image a = Qcow2Image.open(img, OpenOptions.readOnly());
             Qcow2Image b = Qcow2Image.open(img, OpenOptions.readOnly())) {
            assertEquals(a.size(), b.size());
            assertEquals(WRITE + hint(img), refused(img, OpenOptions.readWrite()).getMessage());
            b.close();
            // one reader left: still locked, for this JVM and for QEMU
            assertEquals(WRITE + hint(img), refused(img, OpenOptions.readWrite()).getMessage());
            Qemu.Result write = Qemu.qemuIo("-c", "write 0 512", img.toString());
            assertEquals(1, write.exitCode(), write.describe());
        }
        // all closed: free again
        Qcow2Image.open(img, OpenOptions.readWrite()).close();
        Qemu.io(img, "write 0 512").assertOk();
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"ofd", "posix"})
    void twoJvms(String mechanism) throws IOException {
        LockMechanisms.use(mechanism);
        String property = "-Dqcow4j.lock=" + mechanism;
        Path img = image("disk.qcow2");
        byte[] before;
        try (Holder other = Holder.qcow4j(img, "rw", property)) {
            assertEquals(WRITE + hint(img), refused(img, OpenOptions.readWrite()).getMessage());
            assertEquals(SHARED_WRITE + hint(img), refused(img, OpenOptions.readOnly()).getMessage());
        }
        before = Files.readAllBytes(img);
        try (Holder other = Holder.qcow4j(img, "ro", property)) {
            try (Qcow2Image ro = Qcow2Image.open(img, OpenOptions.readOnly())) {
                assertEquals(4 << 20, ro.size());
            }
            assertEquals(WRITE + hint(img), refused(img, OpenOptions.readWrite()).getMessage());
        }
        assertArrayEquals(before, Files.readAllBytes(img));
        // and the other way round: the second JVM is the one refused
        try (Qcow2Image rw = Qcow2Image.open(img, OpenOptions.readWrite())) {
            Holder.HolderFailed f = assertThrows(Holder.HolderFailed.class, () -> Holder.qcow4j(img, "rw", property).close());
            assertEquals("failed: " + WRITE + hint(img).replace('\n', ' '), f.getMessage());
            Holder.qcow4j(img, "ro-U", property).close();
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"ofd", "posix"})
    void backingFilesAreLockedReadOnly(String mechanism) throws IOException {
        LockMechanisms.use(mechanism);
        Path base = image("base.qcow2");
        Path top = tmp.resolve("top.qcow2");
        Qemu.qemuImg("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top.toString()).assertOk();
        try (Holder vm = Holder.qemuIo(base)) {
            IOException e = refused(top, OpenOptions.readOnly());
            assertEquals("Could not open backing file: " + SHARED_WRITE + hint(base), e.getMessage());
            Qemu.Result qemu = Qemu.qemuIo("-r", "-c", "quit", top.toString());
            assertEquals(qemuReason(qemu, "qemu-io: can't open device " + top + ": "), e.getMessage());
            // without the chain, or with -U, the overlay opens
            Qcow2Image.open(top, OpenOptions.readOnly().openBacking(false)).close();
            Qcow2Image.open(top, OpenOptions.readOnly().forceShare(true)).close();
        }
        try (Qcow2Image ours = Qcow2Image.open(top, OpenOptions.readWrite())) {
            // the overlay is ours to write; its backing file is only read
            Qemu.qemuImg("info", base.toString()).assertOk();
            Qemu.Result write = Qemu.qemuIo("-c", "write 0 512", base.toString());
            assertEquals(1, write.exitCode(), write.describe());
            assertTrue(write.stderr().contains(WRITE + hint(base)), write.describe());
            assertEquals(4 << 20, ours.size());
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"ofd", "posix"})
    void dataFilesAreLocked(String mechanism) throws IOException {
        LockMechanisms.use(mechanism);
        Path img = tmp.resolve("d.qcow2");
        Qemu.besideImage(img, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "data_file=d.data", "d.qcow2", "1M").assertOk();
        Path twin = tmp.resolve("d2.qcow2");
        Files.copy(img, twin); // a second image naming the same data file
        Path data = tmp.resolve("d.data");
        try (Holder vm = Holder.qemuIo(img)) {
            // qemu keeps the data file from being resized under it
            IOException e = refused(twin, OpenOptions.readOnly());
            assertEquals("Failed to get shared \"resize\" lock" + hint(data), e.getMessage());
            Qemu.Result qemu = Qemu.besideImage(twin, "qemu-io", "-r", "-c", "quit", "d2.qcow2");
            assertTrue(qemu.stderr().contains("Failed to get shared \"resize\" lock"), qemu.describe());
        }
        try (Qcow2Image ours = Qcow2Image.open(img, OpenOptions.readWrite())) {
            Qemu.Result resize = Qemu.qemuImg("resize", "-f", "raw", data.toString(), "2M");
            assertEquals(1, resize.exitCode(), resize.describe());
            assertTrue(resize.stderr().contains("Failed to get \"resize\" lock"), resize.describe());
            assertEquals(1 << 20, ours.size());
        }
    }

    @Test
    void rawImagesShareEverything() throws IOException {
        Path raw = tmp.resolve("r.raw");
        Files.write(raw, new byte[1 << 20]);
        try (Holder vm = Holder.qemuIo(raw, "-f", "raw")) {
            // as for two qemu-io: the raw driver shares writing
            try (RawImage ours = RawImage.open(raw, false)) {
                assertEquals(1 << 20, ours.size());
            }
        }
        try (RawImage ours = RawImage.open(raw, false)) {
            Qemu.qemuIo("-f", "raw", "-c", "write 0 512", raw.toString()).assertOk();
            assertEquals(1 << 20, ours.size());
        }
    }

    @Test
    void permissionsAsQemuTakesThem() throws IOException {
        Path img = image("disk.qcow2");
        try (ImageLock rw = ImageLock.qcow2(img, false); ImageLock data = ImageLock.dataFile(image("x.qcow2"), false)) {
            assertEquals(ImageLock.CONSISTENT_READ | ImageLock.WRITE | ImageLock.RESIZE, rw.permissions());
            assertEquals(ImageLock.WRITE | ImageLock.RESIZE, rw.unshared());
            assertEquals(ImageLock.RESIZE, data.unshared());
        }
        assertThrows(IllegalArgumentException.class, () -> ImageLock.acquire(img, 16, ImageLock.ALL));
    }
}
