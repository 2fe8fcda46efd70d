package io.qcow4j.jmh;

import static io.qcow4j.jmh.BitmapImages.BITS;
import static io.qcow4j.jmh.BitmapImages.BLOCK;
import static io.qcow4j.jmh.BitmapImages.GRANULARITY;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

import io.qcow4j.bitmaps.DirtyBitmap;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;

/** An open copy of the template, its bitmap loaded ({@link BitmapFlushBenchmark}'s states). */
public abstract class DirtyImage {
    Path dir;
    Path file;
    Qcow2Image img;
    DirtyBitmap bitmap;
    ByteBuffer buf;

    void open(String prefix) throws IOException {
        open(prefix, BitmapImages.template(), BITS);
    }

    void open(String prefix, Path template, long expectedBits) throws IOException {
        dir = BitmapImages.tempDir(prefix);
        file = BitmapImages.copy(template, dir, "image.qcow2");
        img = Qcow2Image.open(file, OpenOptions.readWrite());
        long t0 = System.nanoTime();
        bitmap = BitmapImages.bitmap(img);
        long t1 = System.nanoTime();
        long set = bitmap.count() / GRANULARITY;   // DISK is a multiple of it: no block clipped
        System.out.printf("# %s: bitmap loaded in %.1f ms, %d of %d bits set, heapBytes %d%n",
                prefix, (t1 - t0) / 1e6, set, BITS, bitmap.heapBytes());
        if (set != expectedBits) {
            throw new IllegalStateException("the template's bitmap has " + set + " bits set, expected " + expectedBits);
        }
        buf = ByteBuffer.allocateDirect(BLOCK);
        byte[] pattern = new byte[BLOCK];
        new SplittableRandom(7).nextBytes(pattern);
        buf.put(pattern).clear();
    }

    void guestWrite(long offset) throws IOException {
        buf.clear();
        img.write(offset, buf);
    }

    void close() throws IOException {
        if (img != null) {
            System.out.printf("# image file at the end: %.1f MiB%n", Files.size(file) / 1048576.0);
            img.close();
            img = null;
        }
        BitmapImages.deleteTree(dir);
    }
}
