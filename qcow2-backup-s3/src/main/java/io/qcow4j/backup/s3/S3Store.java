package io.qcow4j.backup.s3;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

import io.qcow4j.backup.SetStore;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.HeadObjectResponse;
import software.amazon.awssdk.services.s3.model.MultipartUpload;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * A backup set in an S3 bucket under a prefix. Files go up as multipart uploads while they
 * are written ({@link S3Upload}): an object appears under its name only when its upload
 * completes, and an unfinished upload is invisible to listings and reads (the object-store
 * form of NAME.partial and rename); the manifest is one PUT, which S3 makes atomic. Files are
 * read with ranged GETs, several in parallel ahead of the reader ({@link S3ReadFile}).
 *
 * <p>S3 has no lock a killed process would give back: one writer (backup, prune) per set at
 * a time is the caller's to ensure. A set's files are never rewritten in place, so readers
 * (restore, verify) may run beside a backup.
 */
public final class S3Store implements SetStore {
    private static final AtomicInteger THREADS = new AtomicInteger();
    /** Part uploads and ranged reads; each upload and each open file bounds how many it has queued. */
    static final ExecutorService IO = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "qcow4j-s3-" + THREADS.incrementAndGet());
        t.setDaemon(true);
        return t;
    });

    final S3Client s3;
    final S3Location at;

    public S3Store(S3Client s3, S3Location at) {
        this.s3 = s3;
        this.at = at;
    }

    @Override
    public String name() {
        return at.toString();
    }

    @Override
    public Path directory() {
        return null;
    }

    /** How messages name a file: its full s3:// location. */
    String where(String file) {
        return "s3://" + at.bucket() + "/" + at.key(file);
    }

    @Override
    public byte[] readAll(String file) throws IOException {
        try {
            return s3.getObjectAsBytes(r -> r.bucket(at.bucket()).key(at.key(file))).asByteArrayUnsafe();
        } catch (NoSuchKeyException e) {
            return null;
        } catch (SdkException e) {
            IOException x = S3Errors.io(where(file), e);
            if (x instanceof java.nio.file.NoSuchFileException) {
                return null;
            }
            throw x;
        }
    }

    @Override
    public void writeAtomically(String file, byte[] bytes) throws IOException {
        try {
            s3.putObject(r -> r.bucket(at.bucket()).key(at.key(file)), RequestBody.fromBytes(bytes));
        } catch (SdkException e) {
            throw S3Errors.io(where(file), e);
        }
    }

    @Override
    public List<Entry> list(String suffix) throws IOException {
        List<Entry> out = new ArrayList<>();
        String prefix = at.listPrefix();
        try {
            for (S3Object o : s3.listObjectsV2Paginator(r -> r.bucket(at.bucket()).prefix(prefix).delimiter("/")).contents()) {
                String name = o.key().substring(prefix.length());
                if (!name.isEmpty() && name.endsWith(suffix)) {
                    out.add(new Entry(name, o.size(), o.lastModified().toEpochMilli()));
                }
            }
        } catch (SdkException e) {
            throw S3Errors.io(name(), e);
        }
        return out;
    }

    HeadObjectResponse head(String file) throws IOException {
        try {
            return s3.headObject(r -> r.bucket(at.bucket()).key(at.key(file)));
        } catch (SdkException e) {
            throw S3Errors.io(where(file), e);
        }
    }

    @Override
    public ReadFile open(String file) throws IOException {
        HeadObjectResponse h = head(file);
        return new S3ReadFile(this, file, h.contentLength(), h.eTag());
    }

    @Override
    public Output create(String file, long sizeHint) {
        return new S3Upload(this, file, sizeHint);
    }

    @Override
    public boolean exists(String file) throws IOException {
        try {
            head(file);
            return true;
        } catch (java.nio.file.NoSuchFileException e) {
            return false;
        }
    }

    @Override
    public void delete(String file) throws IOException {
        try {
            s3.deleteObject(r -> r.bucket(at.bucket()).key(at.key(file)));
        } catch (SdkException e) {
            IOException x = S3Errors.io(where(file), e);
            if (!(x instanceof java.nio.file.NoSuchFileException)) {
                throw x;
            }
        }
    }

    /** Aborts every unfinished upload of {@code file} (a killed backup's), and deletes the object. */
    @Override
    public void discard(String file) throws IOException {
        String key = at.key(file);
        try {
            for (MultipartUpload u : unfinished(key)) {
                s3.abortMultipartUpload(r -> r.bucket(at.bucket()).key(key).uploadId(u.uploadId()));
            }
        } catch (SdkException e) {
            throw S3Errors.io(where(file), e);
        }
        delete(file);
    }

    /** The unfinished multipart uploads of exactly {@code key}. */
    List<MultipartUpload> unfinished(String key) {
        List<MultipartUpload> out = new ArrayList<>();
        for (MultipartUpload u : s3.listMultipartUploadsPaginator(r -> r.bucket(at.bucket()).prefix(key)).uploads()) {
            if (u.key().equals(key)) {
                out.add(u);
            }
        }
        return out;
    }

    /** Nothing to take: see the class comment. */
    @Override
    public Closeable lock() {
        return () -> { };
    }
}
