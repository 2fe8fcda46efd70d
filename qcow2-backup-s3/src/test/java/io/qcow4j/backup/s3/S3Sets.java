package io.qcow4j.backup.s3;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

import io.qcow4j.backup.BackupOptions;
import io.qcow4j.backup.BackupResult;
import io.qcow4j.backup.BackupSet;
import io.qcow4j.backup.ImageSource;
import io.qcow4j.backup.Progress;
import io.qcow4j.backup.SetStore;
import io.qcow4j.testing.Qemu;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.S3Object;

/** Steps the S3 tests share: backing an image up, restoring a point and comparing it, looking into the bucket. */
final class S3Sets {
    static final String BUCKET = "qcow4j-test";

    private S3Sets() {
    }

    static BackupResult backup(Path image, SetStore set, BackupOptions o) throws IOException {
        try (ImageSource src = ImageSource.open(image, BackupSet.changesCheckpoints(set, o), w -> { })) {
            return BackupSet.backup(set, src, o);
        }
    }

    static void io(Path image, String... cmds) {
        Qemu.io(image, cmds).assertOk();
    }

    static Path snapshot(Path image, Path raw) {
        Qemu.convertToRaw(image, raw);
        return raw;
    }

    /** Restores {@code point} from the set and asserts qemu-img compare finds it equal to {@code expected}. */
    static void assertRestores(SetStore set, String point, Path expected, Path out, boolean raw) throws IOException {
        Files.deleteIfExists(out);
        BackupSet.restore(set, point, out, raw, Progress.none());
        assertEquals(Files.size(expected), Qemu.infoJson(out).get("virtual-size").asLong(), "size of " + point);
        assertTrue(Qemu.compare(expected, out), "restore of " + point + " differs from the disk then");
        if (!raw) {
            Qemu.check(out).assertOk();
        }
    }

    /** The objects under {@code prefix}/, by name. */
    static List<String> objects(S3Client s3, String prefix) {
        return s3.listObjectsV2Paginator(r -> r.bucket(BUCKET).prefix(prefix + "/")).contents().stream()
                .map(S3Object::key).map(k -> k.substring(prefix.length() + 1)).sorted().toList();
    }

    /** Keys of the unfinished multipart uploads under {@code prefix}/. */
    static List<String> unfinishedUploads(S3Client s3, String prefix) {
        return s3.listMultipartUploadsPaginator(r -> r.bucket(BUCKET).prefix(prefix + "/")).uploads().stream()
                .map(u -> u.key().substring(prefix.length() + 1)).filter(Objects::nonNull).sorted().toList();
    }

    static byte[] get(S3Client s3, String key) {
        return s3.getObjectAsBytes(r -> r.bucket(BUCKET).key(key)).asByteArray();
    }

    static void put(S3Client s3, String key, byte[] bytes) {
        s3.putObject(r -> r.bucket(BUCKET).key(key), software.amazon.awssdk.core.sync.RequestBody.fromBytes(bytes));
    }
}
