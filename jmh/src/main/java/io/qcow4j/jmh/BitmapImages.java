package io.qcow4j.jmh;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.bitmaps.DirtyBitmap;

/**
 * The image the bitmap benchmarks share: a 16 TiB qcow2 disk with 2 MiB clusters and one
 * persistent, enabled bitmap {@code b0} of 64 KiB granularity whose every bit is set
 * (2^28 bits = 32 MiB of bitmap data = 16 bitmap clusters).
 *
 * <p>The template comes from {@code -Dqcow4j.jmh.bitmapImage=PATH} (what
 * {@code jmh/run-bitmap-flush.sh} passes: made by qemu-img and qemu-io). Without it, the
 * template is made once per JVM with qemu-img/qemu-io when they are on the PATH, else with
 * the library. Benchmarks work on copies of it.
 *
 * <p>A second template, the <em>dense</em> one, has the same disk and bitmap with every
 * other bit set (bytes 0x55: alternate 64 KiB clusters dirty), so no bitmap cluster is all
 * ones or all zeros. It is made by the library ({@code -Dqcow4j.jmh.denseImage=PATH}, or
 * {@code java -cp benchmarks.jar io.qcow4j.jmh.BitmapImages dense PATH}).
 */
public final class BitmapImages {
    static final long DISK = 16L << 40;
    static final int CLUSTER = 2 << 20;
    static final int GRANULARITY = 64 << 10;
    static final int BLOCK = 64 << 10;
    static final String BITMAP = "b0";
    /** Bits of the bitmap: 16 TiB / 64 KiB = 2^28. */
    static final long BITS = DISK / GRANULARITY;
    /** Bytes of bitmap data: 2^28 / 8 = 32 MiB. */
    static final long BITMAP_BYTES = BITS / 8;

    private static Path made;
    private static Path madeDense;

    private BitmapImages() {
    }

    static Path tempDir(String prefix) throws IOException {
        String parent = System.getProperty("qcow4j.jmh.dir", System.getProperty("java.io.tmpdir"));
        return Files.createTempDirectory(Path.of(parent), prefix);
    }

    /** The fully dirty template image (never opened read-write: callers copy it). */
    static synchronized Path template() throws IOException {
        String given = System.getProperty("qcow4j.jmh.bitmapImage");
        if (given != null && !given.isEmpty()) {
            return Path.of(given);
        }
        if (made == null) {
            Path dir = tempDir("qcow4j-bmtemplate-");
            Path img = dir.resolve("dirty.qcow2");
            if (!makeWithQemu(img)) {
                makeWithLibrary(img);
            }
            made = img;
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try {
                    Files.deleteIfExists(img);
                    Files.deleteIfExists(dir);
                } catch (IOException ignored) {
                    // temp files
                }
            }));
        }
        return made;
    }

    /** The dense template (see the class comment). */
    static synchronized Path denseTemplate() throws IOException {
        String given = System.getProperty("qcow4j.jmh.denseImage");
        if (given != null && !given.isEmpty()) {
            return Path.of(given);
        }
        if (madeDense == null) {
            Path dir = tempDir("qcow4j-bmdense-");
            Path img = dir.resolve("dense.qcow2");
            makeDense(img);
            madeDense = img;
            Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(dir)));
        }
        return madeDense;
    }

    /** A private copy of the template in {@code dir}. */
    static Path copyTemplate(Path dir, String name) throws IOException {
        return copy(template(), dir, name);
    }

    static Path copy(Path template, Path dir, String name) throws IOException {
        Path p = dir.resolve(name);
        Files.copy(template, p, StandardCopyOption.REPLACE_EXISTING);
        return p;
    }

    /** Sets every other block (bits 0, 2, 4...): serialized bytes 0x55 over the whole bitmap. */
    static void fillDense(DirtyBitmap b) {
        for (long off = 0; off < DISK; off += 2 * GRANULARITY) {
            b.set(off, GRANULARITY);
        }
    }

    /** A 16 TiB image, 2 MiB clusters, bitmap b0 (64 KiB) with every other bit set, stored. */
    static void makeDense(Path img) throws IOException {
        try (Qcow2Image q = Qcow2Image.create(img, CreateOptions.size(DISK).clusterSize(CLUSTER))) {
            fillDense(Bitmaps.of(q).add(BITMAP, Bitmaps.AddOptions.defaults().withGranularity(GRANULARITY)));
        }
    }

    /** {@code dense PATH}: writes the dense image; {@code dirty PATH}: the fully dirty one (library). */
    public static void main(String[] args) throws IOException {
        if (args.length != 2 || !(args[0].equals("dense") || args[0].equals("dirty"))) {
            System.err.println("usage: BitmapImages dense|dirty PATH");
            System.exit(2);
        }
        Path p = Path.of(args[1]);
        Files.deleteIfExists(p);
        if (args[0].equals("dense")) {
            makeDense(p);
        } else {
            makeWithLibrary(p);
        }
    }

    private static boolean makeWithQemu(Path img) throws IOException {
        String f = img.toString();
        List<List<String>> cmds = List.of(
                List.of("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=2M", f, "16T"),
                List.of("qemu-img", "bitmap", "--add", "-g", "64k", f, BITMAP),
                List.of("qemu-io", "-c", "write -z -n -q 0 16T", f));
        for (List<String> c : cmds) {
            if (!run(c)) {
                System.out.println("# template: qemu-img/qemu-io not usable (" + String.join(" ", c) + "); using the library");
                Files.deleteIfExists(img);
                return false;
            }
        }
        System.out.println("# template: made with qemu-img create, qemu-img bitmap --add -g 64k, qemu-io 'write -z -n 0 16T'");
        return true;
    }

    private static boolean run(List<String> cmd) {
        try {
            Process p = new ProcessBuilder(new ArrayList<>(cmd)).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            return p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static void makeWithLibrary(Path img) throws IOException {
        try (Qcow2Image q = Qcow2Image.create(img, CreateOptions.size(DISK).clusterSize(CLUSTER))) {
            Bitmaps.of(q).add(BITMAP, Bitmaps.AddOptions.defaults().withGranularity(GRANULARITY)).set(0, DISK);
        }
        System.out.println("# template: made with the library (qemu-img/qemu-io not found)");
    }

    /** The template's bitmap, loaded, checked to be of the expected size and granularity. */
    static DirtyBitmap bitmap(Qcow2Image img) {
        Bitmaps bitmaps = Bitmaps.of(img);
        if (!bitmaps.contains(BITMAP)) {
            throw new IllegalStateException("no bitmap " + BITMAP + " in the template");
        }
        DirtyBitmap b = bitmaps.get(BITMAP);
        if (b.diskSize() != DISK || b.granularity() != GRANULARITY) {
            throw new IllegalStateException("bitmap of " + b.diskSize() + " bytes at granularity " + b.granularity()
                    + ", expected " + DISK + " at " + GRANULARITY);
        }
        b.get(0);    // loads the bits
        return b;
    }

    /** Bytes this thread has passed to write-family system calls so far ({@code wchar} of /proc/thread-self/io). */
    static long threadWchar() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/thread-self/io"))) {
                if (line.startsWith("wchar:")) {
                    return Long.parseLong(line.substring(6).trim());
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux: no verification
        }
        return -1;
    }

    static void deleteTree(Path dir) {
        if (dir == null) {
            return;
        }
        try (var s = Files.list(dir)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                Files.deleteIfExists(p);
            }
            Files.deleteIfExists(dir);
        } catch (IOException ignored) {
            // temp files
        }
    }
}
