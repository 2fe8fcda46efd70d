package io.qcow4j.bitmaps;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.testing.DirtyExtents;
import io.qcow4j.testing.Qemu;

/**
 * What the scenario tests ask the real tools: qemu-img check on every image, bitmap contents
 * through qemu-nbd + nbdinfo, data through qemu-io and qemu-img compare.
 */
final class Oracle {
    static final long K = 1024;
    static final long M = 1024 * K;
    static final long G = 1024 * M;

    private Oracle() {
    }

    /** Creates a qcow2 image with qcow4j (the work), closed again. */
    static Path create(Path img, long size) throws IOException {
        Qcow2Image.create(img, CreateOptions.size(size)).close();
        return img;
    }

    /** Creates an overlay of {@code base} with qcow4j, naming the base relative to it. */
    static Path overlay(Path base, String name) throws IOException {
        Path top = base.resolveSibling(name);
        try (Qcow2Image b = Qcow2Image.open(base, io.qcow4j.core.api.OpenOptions.readOnly().openBacking(false))) {
            Qcow2Image.create(top, CreateOptions.size(b.size()).backingFile(base.getFileName().toString()).backingFormat("qcow2"),
                    io.qcow4j.core.api.OpenOptions.readWrite().openBacking(false)).close();
        }
        return top;
    }

    /** {@code qemu-img check} exits 0 (clean) on each image. */
    static void checkClean(Path... images) {
        for (Path p : images) {
            Qemu.Result r = Qemu.check(p);
            assertEquals(0, r.exitCode(), p + ": " + r.stdout() + r.stderr());
        }
    }

    /** The dirty runs nbdinfo reports for {@code bitmap}, as [start, length] pairs, merged. */
    static List<List<Long>> dirty(Path img, String bitmap) {
        List<List<Long>> out = new ArrayList<>();
        for (List<Long> e : DirtyExtents.parseNbdinfo(Qemu.nbdMap(img, bitmap))) {
            if (e.get(2) != 0) {
                out.add(List.of(e.get(0), e.get(1)));
            }
        }
        return out;
    }

    /** The whole length nbdinfo maps (the bitmap's size, which must be the disk's). */
    static long mappedLength(Path img, String bitmap) {
        return DirtyExtents.parseNbdinfo(Qemu.nbdMap(img, bitmap)).stream().mapToLong(e -> e.get(1)).sum();
    }

    /** Expected dirty runs: {@code startLen} holds start, length, start, length...; merged like nbdinfo's. */
    static List<List<Long>> runs(long... startLen) {
        List<long[]> rs = new ArrayList<>();
        for (int i = 0; i < startLen.length; i += 2) {
            rs.add(new long[] {startLen[i], startLen[i + 1]});
        }
        rs.sort((a, b) -> Long.compare(a[0], b[0]));
        List<List<Long>> out = new ArrayList<>();
        for (long[] r : rs) {
            if (!out.isEmpty()) {
                List<Long> last = out.get(out.size() - 1);
                if (last.get(0) + last.get(1) >= r[0]) {
                    long end = Math.max(last.get(0) + last.get(1), r[0] + r[1]);
                    out.set(out.size() - 1, List.of(last.get(0), end - last.get(0)));
                    continue;
                }
            }
            out.add(List.of(r[0], r[1]));
        }
        return out;
    }

    /** The granularity-aligned blocks a write of {@code [off, off+len)} dirties, as a run. */
    static long[] blocks(long off, long len, long granularity) {
        long start = off / granularity * granularity;
        long end = (off + len + granularity - 1) / granularity * granularity;
        return new long[] {start, end - start};
    }

    /** Concatenates runs for {@link #runs}. */
    static long[] all(long[]... parts) {
        return Arrays.stream(parts).flatMapToLong(Arrays::stream).toArray();
    }

    static void assertDirty(Path img, String bitmap, List<List<Long>> expected) {
        assertEquals(expected, dirty(img, bitmap), img.getFileName() + " bitmap " + bitmap);
    }

    /** {@code qemu-io -c "read -P PAT OFF LEN"...}: every pattern check must pass. */
    static void reads(Path img, String... readCommands) {
        Qemu.Result r = Qemu.io(img, readCommands);
        r.assertOk();
        if (r.stdout().contains("Pattern verification failed")) {
            throw new AssertionError(r.describe());
        }
    }

    /** Writes {@code len} bytes of {@code pattern} through the image's normal write path. */
    static void write(Qcow2Image img, long off, long len, int pattern) throws IOException {
        byte[] b = new byte[(int) len];
        Arrays.fill(b, (byte) pattern);
        img.write(off, ByteBuffer.wrap(b));
    }

    /** The same write by qemu-io (into a reference image). */
    static String qemuWrite(long off, long len, int pattern) {
        return "write -P " + pattern + " " + off + " " + len;
    }

    static List<String> names(Path img) {
        List<String> out = new ArrayList<>();
        Qemu.infoJson(img).path("format-specific").path("data").path("bitmaps").forEach(n -> out.add(n.path("name").asText()));
        return out;
    }

    /** name flags, as qemu-img info lists them ("a [auto]", "b []", "c [in-use, auto]"). */
    static List<String> flags(Path img) {
        List<String> out = new ArrayList<>();
        Qemu.infoJson(img).path("format-specific").path("data").path("bitmaps").forEach(n -> {
            List<String> f = new ArrayList<>();
            n.path("flags").forEach(x -> f.add(x.asText()));
            out.add(n.path("name").asText() + " " + f);
        });
        return out;
    }
}
