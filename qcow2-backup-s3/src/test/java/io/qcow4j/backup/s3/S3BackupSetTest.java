package io.qcow4j.backup.s3;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.backup.BackupException;
import io.qcow4j.backup.BackupOptions;
import io.qcow4j.backup.BackupRecord;
import io.qcow4j.backup.BackupResult;
import io.qcow4j.backup.BackupSet;
import io.qcow4j.backup.ExtentRecord;
import io.qcow4j.backup.Format;
import io.qcow4j.backup.ImageSource;
import io.qcow4j.backup.Level;
import io.qcow4j.backup.Manifest;
import io.qcow4j.backup.Progress;
import io.qcow4j.backup.SetStore;
import io.qcow4j.backup.SetStores;
import io.qcow4j.backup.VerifyReport;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * The backup issue's scenario with the set in a bucket of a real S3 server (S3Proxy, its
 * filesystem backend): a full (a multipart upload), an incremental, one after a discard,
 * one after a resize, a differential; every point restores to the disk as it was (qemu-img
 * compare); verify names a damaged and a missing object, and restore refuses them by name;
 * prune keeps the kept points restorable. Only finished uploads ever show as objects.
 */
class S3BackupSetTest {
    static S3Client s3;

    @TempDir
    Path tmp;

    @BeforeAll
    static void startServer() throws Exception {
        s3 = S3Server.shared().client();
    }

    @AfterAll
    static void closeClient() {
        s3.close();
    }

    @Test
    void fullIncrementalsDifferentialVerifyPrune() throws IOException {
        String prefix = "vm/scenario";
        SetStore set = SetStores.open("s3://" + S3Sets.BUCKET + "/" + prefix + "/", Path::of);
        assertEquals("s3://qcow4j-test/" + prefix, set.name());
        Path img = tmp.resolve("disk.qcow2");
        Qemu.create(img, "48M");
        S3Sets.io(img, "write -P 0x11 0 10M", "write -z 24M 1M", "write -P 0x13 30M 64k");
        List<String> points = new ArrayList<>();
        List<Path> raws = new ArrayList<>();

        // the stream format is the default on S3; 10 MiB of data go up in two parts
        BackupResult full = S3Sets.backup(img, set, BackupOptions.defaults());
        assertEquals(Level.FULL, full.level());
        assertEquals(10L * 1024 * 1024 + 65536, full.dataBytes());
        points.add(full.checkpoint());
        raws.add(S3Sets.snapshot(img, tmp.resolve("p0.raw")));

        S3Sets.io(img, "write -P 0x21 1M 128k", "write -P 0x22 40M 4k");
        // compressed (virtnbdbackup's LZ4 variant): a file of the set may be, another not
        BackupResult inc1 = S3Sets.backup(img, set, BackupOptions.defaults().compress(true));
        assertEquals(Level.INC, inc1.level());
        assertEquals(3 * 65536, inc1.dataBytes());
        points.add(inc1.checkpoint());
        raws.add(S3Sets.snapshot(img, tmp.resolve("p1.raw")));

        S3Sets.io(img, "discard 0 1M", "write -P 0x31 16M 64k");
        BackupResult inc2 = S3Sets.backup(img, set, BackupOptions.defaults().level(Level.INC));
        assertEquals(65536, inc2.dataBytes());
        assertEquals(1024 * 1024, inc2.zeroBytes());
        points.add(inc2.checkpoint());
        raws.add(S3Sets.snapshot(img, tmp.resolve("p2.raw")));

        Qemu.qemuImg("resize", "-q", img.toString(), "64M").assertOk();
        S3Sets.io(img, "write -P 0x41 60M 64k", "write -P 0x42 2M 64k");
        BackupResult inc3 = S3Sets.backup(img, set, BackupOptions.defaults().level(Level.INC));
        assertEquals(2 * 65536, inc3.dataBytes());
        points.add(inc3.checkpoint());
        raws.add(S3Sets.snapshot(img, tmp.resolve("p3.raw")));

        S3Sets.io(img, "write -P 0x51 44M 64k");
        BackupResult diff = S3Sets.backup(img, set, BackupOptions.defaults().level(Level.DIFF).compress(true));
        assertEquals(full.checkpoint(), diff.since());
        assertNull(diff.checkpoint());
        points.add(diff.file().toString());
        raws.add(S3Sets.snapshot(img, tmp.resolve("p4.raw")));

        List<String> files = List.of("disk.001.full.data", "disk.002.inc.data", "disk.003.inc.data", "disk.004.inc.data",
                "disk.005.diff.data");
        List<String> withManifest = new ArrayList<>(files);
        withManifest.add("manifest.json");
        assertEquals(withManifest, S3Sets.objects(s3, prefix));
        assertEquals(List.of(), S3Sets.unfinishedUploads(s3, prefix));
        String etag = s3.headObject(r -> r.bucket(S3Sets.BUCKET).key(prefix + "/" + files.get(0))).eTag();
        assertTrue(etag.endsWith("-2\""), "the full went up in two parts: " + etag);
        assertEquals(files, BackupSet.manifest(set).backups.stream().map(b -> b.file).toList());
        for (BackupRecord b : BackupSet.manifest(set).backups) {
            assertEquals("stream", b.format);
        }

        for (int i = 0; i < points.size(); i++) {
            S3Sets.assertRestores(set, points.get(i), raws.get(i), tmp.resolve("r" + i + ".qcow2"), false);
            if (i == 1 || i == 4) { // the target format is the local side's business: twice is enough
                S3Sets.assertRestores(set, points.get(i), raws.get(i), tmp.resolve("r" + i + ".raw"), true);
            }
        }
        assertTrue(BackupSet.verify(set, Progress.none()).good());

        damagedAndMissingObjectsAreNamed(set, prefix, points);

        List<String> gone = BackupSet.prune(set, 3, Progress.none());
        assertEquals(files.subList(0, 3), gone);
        assertEquals(List.of("disk.003.full.data", "disk.004.inc.data", "disk.005.diff.data", "manifest.json"),
                S3Sets.objects(s3, prefix));
        for (int i = 2; i < 5; i++) {
            S3Sets.assertRestores(set, points.get(i), raws.get(i), tmp.resolve("pr" + i + ".qcow2"), false);
        }
        assertTrue(BackupSet.verify(set, Progress.none()).good());
        // the chain goes on from the pruned set: changes since inc3's checkpoint (the diff's and this one)
        S3Sets.io(img, "write -P 0x61 50M 64k");
        BackupResult inc4 = S3Sets.backup(img, set, BackupOptions.defaults());
        assertEquals(Level.INC, inc4.level());
        assertEquals(inc3.checkpoint(), inc4.since());
        assertEquals(2 * 65536, inc4.dataBytes());
        S3Sets.assertRestores(set, inc4.checkpoint(), S3Sets.snapshot(img, tmp.resolve("now.raw")), tmp.resolve("now.qcow2"), false);
        assertEquals(List.of(), S3Sets.unfinishedUploads(s3, prefix));
    }

    private void damagedAndMissingObjectsAreNamed(SetStore set, String prefix, List<String> points) throws IOException {
        Manifest m = BackupSet.manifest(set);
        BackupRecord inc2 = m.backups.get(2);
        ExtentRecord data = inc2.extents.stream().filter(e -> e.crc32c != null).findFirst().orElseThrow();
        String key = prefix + "/" + inc2.file;
        byte[] good = S3Sets.get(s3, key);
        byte[] bad = good.clone();
        int at = (int) (data.pos + 100);
        bad[at] ^= 0x40;
        S3Sets.put(s3, key, bad);
        VerifyReport v = BackupSet.verify(set, Progress.none());
        assertFalse(v.good());
        for (VerifyReport.FileReport r : v.files()) {
            if (r.file().equals(inc2.file)) {
                assertEquals("damaged", r.status());
                assertEquals(0, r.offset(), r.reason()); // the chunk of 1 MiB that holds the byte
            } else {
                assertTrue(r.ok(), r.toString());
            }
        }
        // restore checks each extent before using it (a compressed one fails its LZ4 checksum first)
        IOException e = assertThrows(IOException.class,
                () -> BackupSet.restore(set, points.get(2), tmp.resolve("bad.qcow2"), false, Progress.none()));
        String why = inc2.compressed ? "'" + inc2.file + "' data frame at offset " + (data.pos - 40) + ": LZ4"
                : "'" + inc2.file + "' damaged at offset " + data.pos + ": the data of guest bytes";
        assertTrue(e.getMessage().contains(why), e.getMessage());
        assertFalse(tmp.resolve("bad.qcow2").toFile().exists());
        S3Sets.put(s3, key, good);

        BackupRecord diff = m.backups.get(4);
        String diffKey = prefix + "/" + diff.file;
        byte[] saved = S3Sets.get(s3, diffKey);
        s3.deleteObject(r -> r.bucket(S3Sets.BUCKET).key(diffKey));
        v = BackupSet.verify(set, Progress.none());
        assertEquals("missing", v.files().get(4).status());
        assertTrue(v.files().subList(0, 4).stream().allMatch(VerifyReport.FileReport::ok));
        NoSuchFileException missing = assertThrows(NoSuchFileException.class,
                () -> BackupSet.restore(set, points.get(4), tmp.resolve("missing.qcow2"), false, Progress.none()));
        assertEquals("s3://" + S3Sets.BUCKET + "/" + diffKey, missing.getFile());
        S3Sets.put(s3, diffKey, saved);
        assertTrue(BackupSet.verify(set, Progress.none()).good());
    }

    @Test
    void qcow2SetsAreRefusedWithTheReason() throws IOException {
        SetStore set = SetStores.open("s3://" + S3Sets.BUCKET + "/refused", Path::of);
        Path img = tmp.resolve("disk.qcow2");
        Qemu.create(img, "1M");
        BackupException e = assertThrows(BackupException.class,
                () -> S3Sets.backup(img, set, BackupOptions.defaults().format(Format.QCOW2)));
        assertTrue(e.getMessage().contains("qcow2 backups need random access to their backing files"), e.getMessage());
        assertTrue(e.getMessage().contains("--format stream"), e.getMessage());
        assertEquals(List.of(), S3Sets.objects(s3, "refused"));

        // a local qcow2 set copied into the bucket (aws s3 sync): read back, it is refused the same way
        Path local = tmp.resolve("local-set");
        BackupResult full;
        try (ImageSource src = ImageSource.open(img, true, w -> { })) {
            full = BackupSet.backup(local, src, BackupOptions.defaults());
        }
        for (String f : List.of(full.file().getFileName().toString(), "manifest.json")) {
            S3Sets.put(s3, "refused/" + f, Files.readAllBytes(local.resolve(f)));
        }
        e = assertThrows(BackupException.class,
                () -> BackupSet.restore(set, full.checkpoint(), tmp.resolve("r.qcow2"), false, Progress.none()));
        assertTrue(e.getMessage().contains("qcow2 backups need random access to their backing files"), e.getMessage());
        assertFalse(Files.exists(tmp.resolve("r.qcow2")));
    }
}
