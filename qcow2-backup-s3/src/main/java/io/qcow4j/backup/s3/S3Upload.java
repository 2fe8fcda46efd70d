package io.qcow4j.backup.s3;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;

import io.qcow4j.backup.SetStore;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.model.CompletedPart;

/**
 * A file going up as a multipart upload while it is written. The first part is held back in
 * memory until the end (a stream's meta frame is completed last: {@link #rewrite}); the
 * others go up as they fill, at most {@link #IN_FLIGHT} at a time, so memory stays at
 * {@code (2 + IN_FLIGHT)} parts whatever the file's size. {@link #publish()} sends the first
 * part and completes the upload: only then does the object exist. A file smaller than a part
 * is one PUT. Closed unpublished, the upload is aborted; a killed process leaves it
 * unfinished and invisible, for {@link S3Store#discard} to abort later.
 */
final class S3Upload implements SetStore.Output {
    /** Parts of 8 MiB (S3's least is 5 MiB) up to files of 70 GiB; larger ones get larger parts. */
    static final int MIN_PART = 8 << 20;
    private static final int MAX_PARTS = 10_000;
    static final int IN_FLIGHT = 3;

    private final S3Store store;
    private final String file;
    private final String key;
    private final int partSize;
    private final Part head;
    private Part cur;
    private String uploadId;
    private int nextPart = 2;
    private final Semaphore slots = new Semaphore(IN_FLIGHT);
    private final List<Future<CompletedPart>> sent = new ArrayList<>();
    private final ArrayDeque<Part> spare = new ArrayDeque<>();
    private volatile IOException failed;
    private boolean published;

    S3Upload(S3Store store, String file, long sizeHint) {
        this.store = store;
        this.file = file;
        this.key = store.at.key(file);
        long wanted = Math.max(MIN_PART, (sizeHint + sizeHint / 16) / (MAX_PARTS - 1000));
        this.partSize = (int) Math.min(1L << 30, (wanted + (1 << 20) - 1) & -(1L << 20));
        // the first part holds the head rewrites reach into
        assert partSize >= HEAD;
        this.head = new Part(partSize);
    }

    @Override
    public void write(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (!head.full()) {
                head.append(b);
                continue;
            }
            if (cur == null) {
                start();
                cur = buffer();
            }
            cur.append(b);
            if (cur.full()) {
                send(cur);
                cur = buffer();
            }
        }
    }

    @Override
    public void rewrite(long pos, ByteBuffer b) {
        if (pos < 0 || pos + b.remaining() > Math.min(HEAD, head.length())) {
            throw new IllegalArgumentException("rewrite of " + b.remaining() + " bytes at " + pos);
        }
        head.overwrite(pos, b);
    }

    private void start() throws IOException {
        try {
            uploadId = store.s3.createMultipartUpload(r -> r.bucket(store.at.bucket()).key(key)).uploadId();
        } catch (SdkException e) {
            throw S3Errors.io(store.where(file), e);
        }
    }

    private synchronized Part buffer() {
        Part p = spare.poll();
        if (p == null) {
            return new Part(partSize);
        }
        p.clear();
        return p;
    }

    private synchronized void giveBack(Part p) {
        if (p != head) {
            spare.push(p);
        }
    }

    /** Queues a part for upload, waiting while {@link #IN_FLIGHT} are on their way. */
    private void send(Part buf) throws IOException {
        long len = buf.length();
        check();
        if (nextPart > MAX_PARTS) {
            throw new IOException(store.where(file) + ": more than " + MAX_PARTS + " parts of " + partSize + " bytes");
        }
        int number = buf == head ? 1 : nextPart++;
        try {
            slots.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted");
        }
        sent.add(S3Store.IO.submit(() -> {
            try {
                String etag = store.s3.uploadPart(r -> r.bucket(store.at.bucket()).key(key).uploadId(uploadId)
                                .partNumber(number).contentLength(len),
                        RequestBody.fromContentProvider(buf::stream, len, "application/octet-stream")).eTag();
                return CompletedPart.builder().partNumber(number).eTag(etag).build();
            } catch (SdkException e) {
                IOException x = S3Errors.io(store.where(file) + " part " + number, e);
                if (failed == null) {
                    failed = x;
                }
                throw x;
            } finally {
                giveBack(buf);
                slots.release();
            }
        }));
    }

    private void check() throws IOException {
        IOException f = failed;
        if (f != null) {
            throw new IOException(f.getMessage(), f);
        }
    }

    @Override
    public void publish() throws IOException {
        check();
        try {
            if (uploadId == null) {
                store.s3.putObject(r -> r.bucket(store.at.bucket()).key(key),
                        RequestBody.fromContentProvider(head::stream, head.length(), "application/octet-stream"));
            } else {
                if (cur.length() > 0) {
                    send(cur);
                }
                send(head);
                List<CompletedPart> parts = new ArrayList<>();
                for (Future<CompletedPart> f : sent) {
                    parts.add(result(f));
                }
                parts.sort(Comparator.comparingInt(CompletedPart::partNumber));
                store.s3.completeMultipartUpload(r -> r.bucket(store.at.bucket()).key(key).uploadId(uploadId)
                        .multipartUpload(u -> u.parts(parts)));
            }
        } catch (SdkException e) {
            throw S3Errors.io(store.where(file), e);
        }
        published = true;
    }

    private static CompletedPart result(Future<CompletedPart> f) throws IOException {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException io) {
                throw new IOException(io.getMessage(), io);
            }
            throw new IOException(e.getCause());
        }
    }

    /** Unpublished: waits for the parts on their way, then aborts the upload. */
    @Override
    public void close() throws IOException {
        if (published) {
            return;
        }
        for (Future<CompletedPart> f : sent) {
            try {
                f.get();
            } catch (ExecutionException | java.util.concurrent.CancellationException e) {
                // dropped with the upload
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        sent.clear();
        spare.clear();
        if (uploadId != null) {
            String id = uploadId;
            uploadId = null;
            try {
                store.s3.abortMultipartUpload(r -> r.bucket(store.at.bucket()).key(key).uploadId(id));
            } catch (SdkException e) {
                throw S3Errors.io(store.where(file) + " (aborting its upload)", e);
            }
        }
    }
}
