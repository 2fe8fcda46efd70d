package io.qcow4j.jmh;

import static io.qcow4j.jmh.BitmapImages.BITS;
import static io.qcow4j.jmh.BitmapImages.CLUSTER;
import static io.qcow4j.jmh.BitmapImages.DISK;
import static io.qcow4j.jmh.BitmapImages.GRANULARITY;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.bitmaps.DirtyBitmap;

/**
 * Heap held by one dirty bitmap of a 16 TiB disk at 64 KiB granularity (2^28 bits), measured
 * as the used heap after full GCs ({@link MemoryMXBean}) before and after adding N bitmaps
 * (default 20) of each kind to an open image through {@link Bitmaps#add}, divided by N:
 *
 * <ul>
 *   <li>{@code empty}: just added, no bit set;</li>
 *   <li>{@code full}: every bit set ({@code set(0, disk size)}, as a fully dirty bitmap loads);</li>
 *   <li>{@code dense}: every other bit set (alternating 64 KiB clusters dirty), the worst
 *       case for a chunked bitmap: no chunk is all zeros or all ones.</li>
 * </ul>
 *
 * Prints one line per kind: {@code heap <kind>: <measured> MiB per bitmap (heapBytes() <x> MiB)}.
 * The bitmaps are removed before the image closes, so nothing is stored.
 *
 * <p>Run: {@code java <Chronicle flags> -Xmx2g -cp jmh/target/benchmarks.jar io.qcow4j.jmh.HeapFootprint [N]}
 * (jmh/run-bitmap-flush.sh does).
 */
public final class HeapFootprint {
    private static final MemoryMXBean MEMORY = ManagementFactory.getMemoryMXBean();
    /** Persistent and enabled, as before: nothing is stored (they are removed before the close). */
    private static final Bitmaps.AddOptions OPTIONS = Bitmaps.AddOptions.defaults().withGranularity(GRANULARITY);

    private HeapFootprint() {
    }

    public static void main(String[] args) throws Exception {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 20;
        Path dir = BitmapImages.tempDir("qcow4j-heap-");
        try (Qcow2Image img = Qcow2Image.create(dir.resolve("heap.qcow2"), CreateOptions.size(DISK).clusterSize(CLUSTER))) {
            Bitmaps m = Bitmaps.of(img);
            List<DirtyBitmap> keep = new ArrayList<>();

            // warm up the classes and code paths involved, then drop the result
            DirtyBitmap w = m.add("warmup", OPTIONS);
            w.set(0, DISK);
            w.reset(0, DISK);
            m.remove(w.name());

            // the dense template: alternating bits, made once, kept out of the dense figure
            DirtyBitmap dense = DirtyBitmap.standalone("dense", DISK, GRANULARITY);
            BitmapImages.fillDense(dense);

            System.out.printf("# %d bitmaps of each kind; disk %d TiB, granularity %d KiB, %d bits (%d MiB of bitmap data)%n",
                    n, DISK >> 40, GRANULARITY >> 10, BITS, BitmapImages.BITMAP_BYTES >> 20);
            measure("empty", n, m, keep, bits -> { });
            measure("full", n, m, keep, b -> b.set(0, DISK));
            measure("dense", n, m, keep, b -> b.mergeFrom(dense));

            for (DirtyBitmap b : keep) {
                m.remove(b.name());
            }
        } finally {
            BitmapImages.deleteTree(dir);
        }
    }

    private interface Fill {
        void fill(DirtyBitmap b);
    }

    private static void measure(String kind, int n, Bitmaps m, List<DirtyBitmap> keep, Fill fill)
            throws IOException {
        long before = usedAfterGc();
        long reported = 0;
        for (int i = 0; i < n; i++) {
            DirtyBitmap b = m.add(kind + "-" + i, OPTIONS);
            fill.fill(b);
            reported += b.heapBytes();
            keep.add(b);
        }
        long after = usedAfterGc();
        double measured = (after - before) / (double) n / 1048576.0;
        System.out.printf("heap %s: %.3f MiB per bitmap (heapBytes() %.3f MiB)%n",
                kind, measured, reported / (double) n / 1048576.0);
    }

    private static long usedAfterGc() {
        long used = Long.MAX_VALUE;
        for (int i = 0; i < 4; i++) {
            System.gc();
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            used = Math.min(used, MEMORY.getHeapMemoryUsage().getUsed());
        }
        return used;
    }
}
