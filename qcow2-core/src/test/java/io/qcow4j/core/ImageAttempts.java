package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.api.UnsupportedImageException;
import io.qcow4j.testing.Patterns;

/**
 * The harness of {@link AdversarialImagesTest}: one "attempt" at an image opens it (read-only
 * or read-write), reads the whole disk, walks its block status, reads every internal snapshot
 * and, read-write, writes 4 KiB and reads it back; each stage's failure is recorded. An
 * attempt runs under a time limit and an allocation budget (metered per thread), and the
 * assertions below check the failures against what a case expects and the file's SHA-256.
 */
final class ImageAttempts {
    /** One try at an image; the first one of a JVM also pays for class loading. */
    static final Duration TIMEOUT = Duration.ofSeconds(10);
    /** Bytes one try may allocate (garbage included) before we call it an allocation by a hostile size. */
    static final long ALLOCATION_BUDGET = 128L << 20;
    /** Disks up to this size are read whole; larger ones from the start and by samples. */
    static final long READ_ALL_LIMIT = 64L << 20;
    static final int CHUNK = 1 << 20;

    enum Mode { RO, RW }

    /** What one try at an image did: the stages that failed, and what it read. */
    static final class Attempt {
        final Path image;
        final Mode mode;
        final Map<String, Throwable> failures = new LinkedHashMap<>();
        boolean opened;
        long size = -1;
        long allocated;
        /** SHA-256 of the disk as read (whole disks only, else null). */
        String digest;
        /** Where the read-write try wrote, or -1. */
        long writtenAt = -1;
        /** Reads {@code len} bytes of the image afresh (read-only). */
        byte[] readBack(long offset, int len) {
            try (Qcow2Image img = Qcow2Image.open(image, OpenOptions.readOnly())) {
                ByteBuffer b = ByteBuffer.allocate((int) Math.min(len, img.size() - offset));
                img.read(offset, b);
                return b.array();
            } catch (IOException e) {
                throw new AssertionError(this + ": read back failed", e);
            }
        }

        Attempt(Path image, Mode mode) {
            this.image = image;
            this.mode = mode;
        }

        Map.Entry<String, Throwable> first() {
            return failures.isEmpty() ? null : failures.entrySet().iterator().next();
        }

        @Override
        public String toString() {
            StringBuilder b = new StringBuilder(mode + " " + image.getFileName() + ":");
            if (failures.isEmpty()) {
                b.append(" no failure");
            }
            failures.forEach((stage, t) -> b.append(" [").append(stage).append(": ").append(t).append(']'));
            return b.toString();
        }
    }

    /**
     * Tries the image in one mode, within the time limit and the allocation budget; read-write
     * tries write at {@code writeOffset} (none when negative).
     */
    static Attempt attempt(Path img, Mode mode, long writeOffset, long budget) {
        Attempt a = assertTimeoutPreemptively(TIMEOUT, () -> run(img, mode, writeOffset),
                () -> mode + " use of " + img.getFileName() + " hangs");
        assertTrue(a.allocated <= budget, () -> a + ": allocated " + a.allocated + " bytes, over the budget of " + budget);
        return a;
    }

    private static Attempt run(Path img, Mode mode, long writeOffset) {
        Attempt a = new Attempt(img, mode);
        long before = allocatedBytes();
        Qcow2Image image;
        try {
            image = Qcow2Image.open(img, mode == Mode.RO ? OpenOptions.readOnly() : OpenOptions.readWrite());
        } catch (Throwable t) {
            a.failures.put("open", t);
            a.allocated = allocatedBytes() - before;
            return a;
        }
        a.opened = true;
        a.size = image.size();
        stage(a, "read", () -> a.digest = readDisk(image));
        stage(a, "blockStatus", () -> walkBlockStatus(image));
        stage(a, "snapshots", () -> readSnapshots(image));
        if (mode == Mode.RW && image.size() > 0 && writeOffset >= 0) {
            stage(a, "write", () -> a.writtenAt = writeAndReadBack(image, writeOffset));
        }
        stage(a, "close", image::close);
        a.allocated = allocatedBytes() - before;
        return a;
    }

    interface Step {
        void run() throws Exception;
    }

    private static void stage(Attempt a, String name, Step step) {
        try {
            step.run();
        } catch (Throwable t) {
            a.failures.put(name, t);
        }
    }

    /** Reads the disk (whole, or its start and samples when it is large); the digest of a whole read. */
    private static String readDisk(BlockDevice dev) throws IOException {
        long size = dev.size();
        MessageDigest md = sha256();
        ByteBuffer buf = ByteBuffer.allocate(CHUNK);
        long whole = size <= READ_ALL_LIMIT ? size : 16L << 20;
        for (long off = 0; off < whole; off += CHUNK) {
            buf.clear().limit((int) Math.min(CHUNK, whole - off));
            dev.read(off, buf);
            if (buf.hasRemaining()) {
                throw new AssertionError("read left " + buf.remaining() + " bytes unfilled at " + off);
            }
            md.update(buf.flip());
        }
        if (whole == size) {
            return HexFormat.of().formatHex(md.digest());
        }
        for (int i = 0; i <= 32; i++) {
            long off = (size - 65536) / 32 * i;
            buf.clear().limit(65536);
            dev.read(off, buf);
        }
        return null;
    }

    private static void walkBlockStatus(Qcow2Image image) throws IOException {
        long size = image.size();
        long off = 0;
        for (int calls = 0; off < size && calls < 100_000; calls++) {
            BlockStatus s = image.blockStatus(off, size - off);
            if (s.offset() != off || s.length() <= 0 || s.length() > size - off) {
                throw new AssertionError("block status " + s + " for [" + off + ", " + size + ")");
            }
            off += s.length();
        }
    }

    /**
     * Snapshots read in full, at most: a damaged nb_snapshots may name hundreds of empty
     * entries, each a whole disk to read through the same code, and the garbage of reading
     * them all (not the memory held) went over the budget (testdata/regressions/fuzz-*).
     */
    static final int SNAPSHOTS_READ = 16;

    private static void readSnapshots(Qcow2Image image) throws IOException {
        int n = 0;
        for (Snapshot s : image.snapshots().list()) {
            if (n++ == SNAPSHOTS_READ) {
                break;
            }
            readDisk(image.snapshots().view(s.id()));
        }
    }

    static final int WRITE_LENGTH = 4096;

    /** Writes 4 KiB of 0xa5 at (or, past the end, before) {@code offset}; must read back. Returns where. */
    private static long writeAndReadBack(Qcow2Image image, long offset) throws IOException {
        int len = (int) Math.min(WRITE_LENGTH, image.size());
        long off = Math.min(offset, image.size() - len);
        image.write(off, ByteBuffer.wrap(Patterns.pattern(0xa5, len)));
        image.flush();
        ByteBuffer back = ByteBuffer.allocate(len);
        image.read(off, back);
        if (!Patterns.matches(back.array(), 0xa5)) {
            throw new AssertionError("written data does not read back at " + off);
        }
        return off;
    }

    static long allocatedBytes() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }

    // ------------------------------------------------------------------- expectations

    /** An expected failure: its type, the file offset it must name (or null), message fragments. */
    static class Expect {
        final Class<? extends IOException> type;
        final Long fileOffset;
        final String[] fragments;

        Expect(Class<? extends IOException> type, Long fileOffset, String... fragments) {
            this.type = type;
            this.fileOffset = fileOffset;
            this.fragments = fragments;
        }

        void check(Throwable t, String context) {
            assertNotNull(t, context + ": expected " + this + " but nothing failed");
            if (!type.isInstance(t)) {
                throw new AssertionError(context + ": expected " + type.getSimpleName() + " " + Arrays.toString(fragments)
                        + ", got " + t, t);
            }
            String msg = String.valueOf(t.getMessage()).toLowerCase(Locale.ROOT);
            for (String f : fragments) {
                assertTrue(msg.contains(f.toLowerCase(Locale.ROOT)),
                        () -> context + ": message \"" + t.getMessage() + "\" does not mention \"" + f + "\"");
            }
            if (t instanceof CorruptImageException c) {
                assertTrue(t.getMessage().contains("offset 0x"), () -> context + ": no file offset in \"" + t.getMessage() + "\"");
                if (fileOffset != null) {
                    assertEquals(fileOffset.longValue(), c.fileOffset(), () -> context + ": file offset named by \"" + t.getMessage() + "\"");
                }
            }
        }

        @Override
        public String toString() {
            return type.getSimpleName() + (fileOffset == null ? "" : " at 0x" + Long.toHexString(fileOffset))
                    + " " + Arrays.toString(fragments);
        }
    }

    static Expect corrupt(long fileOffset, String... fragments) {
        return new Expect(CorruptImageException.class, fileOffset, fragments);
    }

    static Expect corrupt(String... fragments) {
        return new Expect(CorruptImageException.class, null, fragments);
    }

    static Expect unsupported(String... fragments) {
        return new Expect(UnsupportedImageException.class, null, fragments);
    }

    /** Corrupt or unsupported, whichever the engine finds apt (e.g. an unknown version). */
    static Expect anyOf(long fileOffset, String... fragments) {
        return new Expect(IOException.class, fileOffset, fragments) {
            @Override
            void check(Throwable t, String context) {
                assertTrue(t instanceof CorruptImageException || t instanceof UnsupportedImageException,
                        () -> context + ": expected CorruptImageException or UnsupportedImageException, got " + t);
                super.check(t, context);
            }
        };
    }

    /** Open fails in both modes as expected, and the file is unchanged. */
    static void assertOpenFails(Path img, Expect expect) {
        assertOpenFails(img, ALLOCATION_BUDGET, expect);
    }

    static void assertOpenFails(Path img, long budget, Expect expect) {
        String sha = ImageEditor.sha256(img);
        for (Mode mode : Mode.values()) {
            Attempt a = attempt(img, mode, 0, budget);
            expectFailure(a, "open", expect);
            assertEquals(sha, ImageEditor.sha256(img), () -> a + " changed the file");
        }
    }

    /**
     * The image opens in both modes, {@code stage} fails as expected in both, a write at
     * {@code writeOffset} fails too, every other failure is an IOException, and the file is unchanged.
     */
    static void assertStageFails(Path img, String stage, long writeOffset, Expect expect) {
        String sha = ImageEditor.sha256(img);
        for (Mode mode : Mode.values()) {
            Attempt a = attempt(img, mode, writeOffset, ALLOCATION_BUDGET);
            assertTrue(a.opened, () -> a + ": should open");
            expectFailure(a, stage, expect);
            if (mode == Mode.RW && !stage.equals("snapshots")) {
                assertTrue(a.failures.containsKey("write"), () -> a + ": the write over the damage should fail");
            }
            assertEquals(sha, ImageEditor.sha256(img), () -> a + " changed the file");
        }
    }

    /** Read-only use works; the read-write write at {@code writeOffset} fails as expected, file unchanged. */
    static void assertWriteFails(Path img, long writeOffset, Expect expect) {
        String sha = ImageEditor.sha256(img);
        assertClean(attempt(img, Mode.RO, writeOffset, ALLOCATION_BUDGET));
        Attempt rw = attempt(img, Mode.RW, writeOffset, ALLOCATION_BUDGET);
        assertTrue(rw.opened, () -> rw + ": should open");
        expectFailure(rw, "write", expect);
        assertEquals(sha, ImageEditor.sha256(img), () -> rw + " changed the file");
    }

    /** Works in both modes without any failure (the read-write try writes, so the file changes). */
    static Attempt assertWorks(Path img) {
        return assertWorks(img, 0);
    }

    static Attempt assertWorks(Path img, long writeOffset) {
        Attempt ro = assertReads(img);
        assertClean(attempt(img, Mode.RW, writeOffset, ALLOCATION_BUDGET));
        return ro;
    }

    /**
     * Read-only use fails only with IOExceptions and changes nothing; read-write either refuses
     * the open (Corrupt, file unchanged) or opens (repairing) and fails only with IOExceptions.
     */
    static void assertRefusedOrRepaired(Path img, long writeOffset) {
        String sha = ImageEditor.sha256(img);
        Attempt ro = attempt(img, Mode.RO, writeOffset, ALLOCATION_BUDGET);
        assertOnlyIoExceptions(ro, "");
        assertEquals(sha, ImageEditor.sha256(img), () -> ro + " changed the file");
        Attempt rw = attempt(img, Mode.RW, writeOffset, ALLOCATION_BUDGET);
        assertOnlyIoExceptions(rw, "");
        if (!rw.opened) {
            expectFailure(rw, "open", corrupt());
            assertEquals(sha, ImageEditor.sha256(img), () -> rw + " changed the file");
        }
    }

    /** Read-write use works, or the open is refused as unsupported and the file is unchanged. */
    static void assertWritesOrRefuses(Path img) {
        String sha = ImageEditor.sha256(img);
        Attempt rw = attempt(img, Mode.RW, 0, ALLOCATION_BUDGET);
        if (rw.opened) {
            assertClean(rw);
        } else {
            expectFailure(rw, "open", unsupported("header"));
            assertEquals(sha, ImageEditor.sha256(img), () -> rw + " changed the file");
        }
    }

    /** Works read-only without any failure, and leaves the file as it was. */
    static Attempt assertReads(Path img) {
        String sha = ImageEditor.sha256(img);
        Attempt ro = attempt(img, Mode.RO, 0, ALLOCATION_BUDGET);
        assertClean(ro);
        assertEquals(sha, ImageEditor.sha256(img), "read-only use changed the file");
        return ro;
    }

    static void assertClean(Attempt a) {
        if (!a.failures.isEmpty()) {
            Throwable t = a.first().getValue();
            throw new AssertionError(a + ": expected no failure", t);
        }
    }

    static void expectFailure(Attempt a, String stage, Expect expect) {
        assertOnlyIoExceptions(a, "");
        expect.check(a.failures.get(stage), a.toString());
    }

    /** Every failure is an IOException: no RuntimeException, no Error, no failed check of ours. */
    static void assertOnlyIoExceptions(Attempt a, String context) {
        a.failures.forEach((stage, t) -> {
            if (!(t instanceof IOException)) {
                throw new AssertionError(context + " " + a + ": " + stage + " threw " + t, t);
            }
        });
    }

    static String digest(byte[] data) {
        return HexFormat.of().formatHex(sha256().digest(data));
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    private ImageAttempts() {
    }
}
