package com.example.backupvendor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.bitmaps.DirtyBitmap;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;

/**
 * What a backup vendor's agent does with qcow4j, in a plain JVM (no --add-opens flags needed):
 * creates (or opens) an image, adds a persistent dirty bitmap, writes some ranges, then reopens
 * the image read-only and lists what the bitmap says changed. Exits 1 if that is not what it
 * wrote (rounded out to the bitmap's 64 KiB granules), 2 on an I/O error.
 *
 * <p>Usage: {@code java -cp CLASSPATH com.example.backupvendor.BackupVendor IMAGE}
 */
public final class BackupVendor {
    private static final long KIB = 1024;
    private static final long MIB = 1024 * KIB;
    private static final String BITMAP = "vendor-incremental";

    /** The writes: {offset, length}. */
    private static final long[][] WRITES = {
        {0, 64 * KIB},
        {MIB + 4 * KIB, 8 * KIB},
        {100 * MIB, 3 * MIB},
    };
    /** What the bitmap must list after them: the writes rounded out to 64 KiB granules. */
    private static final List<DirtyBitmap.Extent> EXPECTED = List.of(
            new DirtyBitmap.Extent(0, 64 * KIB, true),
            new DirtyBitmap.Extent(MIB, 64 * KIB, true),
            new DirtyBitmap.Extent(100 * MIB, 3 * MIB, true));

    private BackupVendor() {
    }

    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: BackupVendor IMAGE");
            System.exit(2);
        }
        try {
            System.exit(run(Path.of(args[0])) ? 0 : 1);
        } catch (IOException e) {
            System.err.println("backup-vendor: " + e);
            System.exit(2);
        }
    }

    static boolean run(Path path) throws IOException {
        // the library reports what the application should know (e.g. that this JVM lacks the
        // flags of its fastest metadata path) here; by default to System.Logger "io.qcow4j"
        OpenOptions options = OpenOptions.readWrite().warnings(w -> System.err.println("qcow4j warning: " + w));
        try (Qcow2Image image = Files.exists(path)
                ? Qcow2Image.open(path, options)
                : Qcow2Image.create(path, CreateOptions.size(1024 * MIB), options)) {
            Bitmaps bitmaps = Bitmaps.of(image);
            if (bitmaps.contains(BITMAP)) {
                bitmaps.remove(BITMAP);        // a fresh start on an existing image
            }
            bitmaps.add(BITMAP);               // persistent, enabled, 64 KiB granularity
            byte fill = 1;
            for (long[] w : WRITES) {
                byte[] data = new byte[(int) w[1]];
                Arrays.fill(data, fill++);
                image.write(w[0], ByteBuffer.wrap(data));   // dirties every enabled bitmap
            }
        }                                       // close stores the bitmap in the image

        // later (another process, another day): what changed, without writing anything
        List<DirtyBitmap.Extent> dirty;
        try (Qcow2Image image = Qcow2Image.open(path, OpenOptions.readOnly())) {
            dirty = new ArrayList<>(Bitmaps.of(image).get(BITMAP).dirtyExtents());
        }
        for (DirtyBitmap.Extent e : dirty) {
            System.out.printf("dirty: start %d length %d%n", e.start(), e.length());
        }
        if (!dirty.equals(EXPECTED)) {
            System.err.println("backup-vendor: dirty extents " + dirty + ", expected " + EXPECTED);
            return false;
        }
        System.out.println("ok: " + dirty.size() + " dirty extents as written");
        return true;
    }
}
