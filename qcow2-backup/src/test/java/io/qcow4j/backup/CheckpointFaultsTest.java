package io.qcow4j.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.format.BitmapsExtension;
import io.qcow4j.core.format.HeaderExtension;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A checkpoint that cannot be trusted (its bitmap removed, in_use, left at another size, a gap
 * in the chain) is refused with the reason, nothing changed; {@code auto} falls back to a full
 * backup, says why, and that backup restores to the disk.
 */
class CheckpointFaultsTest {
    @TempDir
    Path tmp;
    Path img;
    Path dir;
    Path now;

    @BeforeEach
    void fullBackup() throws IOException {
        img = tmp.resolve("disk.qcow2");
        dir = tmp.resolve("set");
        Qemu.create(img, "8M");
        Sets.io(img, "write -P 0x11 0 1M");
        assertEquals("qcow4j.0", Sets.backup(img, dir, Level.FULL, Format.QCOW2, false).checkpoint());
        Sets.io(img, "write -P 0x12 2M 64k");
        now = Sets.snapshot(img, tmp.resolve("now.raw"));
    }

    @Test
    void bitmapRemoved() throws IOException {
        Qemu.qemuImg("bitmap", "--remove", img.toString(), "qcow4j.0").assertOk();
        refusedThenFull(Level.INC, "checkpoint 'qcow4j.0' is not in the image (its bitmap was removed)");
    }

    @Test
    void bitmapInUse() throws IOException {
        patchEntry("qcow4j.0", 12, 1 | 2); // in_use | auto, as a process killed while holding the image leaves it
        refusedThenFull(Level.INC, "checkpoint 'qcow4j.0': its bitmap is in_use (the image was not closed cleanly)");
    }

    @Test
    void bitmapLeftAtAnotherSize() throws IOException {
        patchEntry("qcow4j.0", 8, 2); // a table for a disk twice the size the bitmap could cover
        refusedThenFull(Level.INC, "checkpoint 'qcow4j.0': its bitmap was left at another size than the disk's 8388608 bytes",
                () -> {
                    // QEMU cannot open the image while the broken bitmap is there: remove it (as a user would)
                    try (Qcow2Image q = Qcow2Image.open(img, OpenOptions.readWrite().sizeMismatchBitmapsInconsistent(true))) {
                        io.qcow4j.bitmaps.Bitmaps.of(q).remove("qcow4j.0");
                    }
                });
    }

    @Test
    void gapALaterCheckpointMissing() throws IOException {
        Sets.backup(img, dir, Level.INC, Format.QCOW2, false); // qcow4j.1
        Qemu.qemuImg("bitmap", "--remove", img.toString(), "qcow4j.1").assertOk();
        BackupException e = assertThrows(BackupException.class, () -> Sets.backup(img, dir, Level.DIFF, Format.QCOW2, false));
        assertEquals("cannot take a differential backup: gap in the chain: checkpoint 'qcow4j.1', taken after 'qcow4j.0', "
                + "is missing from the image", e.getMessage());
    }

    @Test
    void gapNothingRecording() throws IOException {
        Qemu.qemuImg("bitmap", "--disable", img.toString(), "qcow4j.0").assertOk();
        refusedThenFull(Level.INC, "gap in the chain: no checkpoint from 'qcow4j.0' on records writes (all are disabled)");
    }

    /**
     * Someone else's bitmap (--bitmap) is checked as a checkpoint is: in_use, refused with the
     * reason; with auto a full backup instead, which starts no checkpoint (the bitmap's owner
     * keeps them) and restores to the disk.
     */
    @Test
    void foreignBitmapInUse() throws IOException {
        // the vendor's bitmap: every change since the full's checkpoint, recording on
        Qemu.qemuImg("bitmap", "--add", img.toString(), "vendor").assertOk();
        Qemu.qemuImg("bitmap", "--merge", "qcow4j.0", img.toString(), "vendor").assertOk();
        Sets.io(img, "write -P 0x14 4M 64k");
        now = Sets.snapshot(img, tmp.resolve("now2.raw"));
        // sound, it is read: the inc holds what it recorded, and starts no checkpoint of the image
        List<String> before = checkpoints();
        BackupResult ok = Sets.backup(img, dir, BackupOptions.defaults().level(Level.INC).bitmap("vendor").checkpoint("v1"));
        assertEquals(2 * 65536, ok.dataBytes());
        assertEquals("v1", ok.checkpoint());
        assertEquals(before, checkpoints());
        assertEquals("vendor", Manifest.load(dir).find("v1").bitmap);
        Sets.assertRestores(dir, "v1", now, tmp.resolve("r1.qcow2"), false);

        patchEntry("vendor", 12, 1 | 2); // in_use | auto
        String reason = "bitmap 'vendor' is in_use (the image was not closed cleanly), so what changed is unknown";
        BackupException e = assertThrows(BackupException.class, () -> Sets.backup(img, dir,
                BackupOptions.defaults().level(Level.INC).bitmap("vendor")));
        assertEquals("cannot take an incremental backup: " + reason, e.getMessage());
        e = assertThrows(BackupException.class, () -> Sets.backup(img, dir,
                BackupOptions.defaults().level(Level.INC).bitmap("nope")));
        assertEquals("cannot take an incremental backup: bitmap 'nope' is not in '" + img + "'", e.getMessage());
        assertEquals(2, Manifest.load(dir).backups.size());

        BackupResult r = Sets.backup(img, dir, BackupOptions.defaults().level(Level.AUTO).bitmap("vendor").checkpoint("v2"));
        assertEquals(Level.FULL, r.level());
        assertEquals(reason + "; falling back to a full backup", r.note());
        assertEquals("v2", r.checkpoint());
        assertNull(Manifest.load(dir).find("v2").bitmap, "a full reads no bitmap");
        assertEquals(before, checkpoints());
        Sets.assertRestores(dir, "v2", now, tmp.resolve("r.qcow2"), false);
    }

    private interface Step {
        void run() throws IOException;
    }

    private void refusedThenFull(Level level, String reason) throws IOException {
        refusedThenFull(level, reason, () -> { });
    }

    private void refusedThenFull(Level level, String reason, Step afterFull) throws IOException {
        List<String> before = checkpoints();
        BackupException e = assertThrows(BackupException.class, () -> Sets.backup(img, dir, level, Format.QCOW2, false));
        assertTrue(e.getMessage().startsWith("cannot take an incremental backup: " + reason), e.getMessage());
        assertEquals(before, checkpoints(), "a refused backup changes no checkpoint");
        Manifest m = Manifest.load(dir);
        assertEquals(1, m.backups.size());
        assertNull(m.pending);

        BackupResult r = Sets.backup(img, dir, Level.AUTO, Format.QCOW2, false);
        assertEquals(Level.FULL, r.level());
        assertTrue(r.note().startsWith(reason) && r.note().endsWith("; falling back to a full backup"), r.note());
        assertNull(r.since());
        Sets.assertRestores(dir, r.checkpoint(), now, tmp.resolve("r.qcow2"), false);
        afterFull.run();
        // the new chain goes on incrementally
        Sets.io(img, "write -P 0x13 3M 64k");
        BackupResult inc = Sets.backup(img, dir, Level.AUTO, Format.QCOW2, false);
        assertEquals(Level.INC, inc.level());
        assertEquals(r.checkpoint(), inc.since());
        assertEquals(65536, inc.dataBytes());
        Sets.assertRestores(dir, inc.checkpoint(), Sets.snapshot(img, tmp.resolve("later.raw")), tmp.resolve("r2.qcow2"), false);
    }

    private List<String> checkpoints() throws IOException {
        try (ImageSource s = ImageSource.open(img, false, w -> { })) {
            return s.checkpoints().names();
        }
    }

    /** Overwrites a 32-bit field of bitmap {@code name}'s directory entry (8: table size, 12: flags). */
    private void patchEntry(String name, int field, int value) throws IOException {
        long dirOffset;
        long dirSize;
        try (Qcow2Image q = Qcow2Image.open(img, OpenOptions.readOnly())) {
            BitmapsExtension be = BitmapsExtension.parse(q.engine().header().extension(HeaderExtension.BITMAPS).data(), q.info().clusterSize());
            dirOffset = be.directoryOffset();
            dirSize = be.directorySize();
        }
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer d = ByteBuffer.allocate((int) dirSize);
            ch.read(d, dirOffset);
            int p = 0;
            while (p < dirSize) {
                int nameSize = d.getShort(p + 18) & 0xffff;
                int extra = d.getInt(p + 20);
                String n = new String(d.array(), p + 24 + extra, nameSize, StandardCharsets.UTF_8);
                if (n.equals(name)) {
                    ch.write(ByteBuffer.allocate(4).putInt(0, value), dirOffset + p + field);
                    return;
                }
                p += (24 + extra + nameSize + 7) & ~7;
            }
        }
        throw new AssertionError("no bitmap " + name);
    }
}
