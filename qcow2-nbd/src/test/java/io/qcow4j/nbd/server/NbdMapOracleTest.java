package io.qcow4j.nbd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import io.qcow4j.testing.Qemu;

/**
 * What nbdinfo sees of our export equals what it sees of qemu-nbd serving the same file:
 * the maps of base:allocation, qemu:allocation-depth and each qemu:dirty-bitmap, the
 * listing and the JSON description (size, flags, block sizes, contexts).
 */
@Timeout(120)
class NbdMapOracleTest {
    @TempDir
    Path dir;

    private void run(String... cmd) {
        Qemu.run(dir, Duration.ofSeconds(60), cmd).assertOk();
    }

    /** Both servers on {@code img} with the same options; each nbdinfo call must print the same. */
    private void same(String img, String format, List<String> bitmaps, boolean depth, List<String[]> queries) throws Exception {
        List<String> opts = new ArrayList<>(List.of("-r", "-f", format));
        bitmaps.forEach(b -> opts.addAll(List.of("-B", b)));
        if (depth) {
            opts.add("-A");
        }
        Path file = dir.resolve(img);
        try (Servers.QemuNbd q = new Servers.QemuNbd(file, dir.resolve("q.sock"), opts.toArray(new String[0]));
             Servers.Ours o = new Servers.Ours(file, format, false, dir.resolve("o.sock"), b -> {
                 bitmaps.forEach(b::bitmap);
                 b.allocationDepth(depth);
             })) {
            for (String[] args : queries) {
                String expected = Servers.nbdinfo(q.uri(), args);
                assertTrue(expected.length() > 0);
                assertEquals(expected, Servers.nbdinfo(o.uri(), args), img + ": nbdinfo " + String.join(" ", args));
            }
        }
    }

    private static List<String[]> maps(String... bitmaps) {
        List<String[]> q = new ArrayList<>();
        q.add(new String[] {"--map"});
        q.add(new String[] {"--map=qemu:allocation-depth"});
        for (String b : bitmaps) {
            q.add(new String[] {"--map=qemu:dirty-bitmap:" + b});
        }
        return q;
    }

    @Test
    void plainImageWithBitmaps() throws Exception {
        run("qemu-img", "create", "-q", "-f", "qcow2", "plain.qcow2", "64M");
        run("qemu-img", "bitmap", "--add", "plain.qcow2", "old");
        run("qemu-io", "-c", "write -P 1 0 1M", "-c", "write -z 2M 1M", "-c", "write -P 2 5M 100k",
                "-c", "write -P 3 63M 4k", "plain.qcow2");
        run("qemu-img", "bitmap", "--add", "-g", "4k", "plain.qcow2", "new");
        run("qemu-img", "bitmap", "--add", "--disable", "plain.qcow2", "off");
        run("qemu-io", "-c", "write -P 4 10M 6k", "-c", "write -z 12M 64k", "-c", "discard 0 128k", "plain.qcow2");
        List<String[]> q = maps("old", "new", "off");
        q.add(new String[] {"--json"});
        q.add(new String[] {"--list"});
        same("plain.qcow2", "qcow2", List.of("old", "new", "off"), true, q);
    }

    @Test
    void chainOfThree() throws Exception {
        run("qemu-img", "create", "-q", "-f", "qcow2", "base.qcow2", "16M");
        run("qemu-io", "-c", "write -P 1 0 2M", "-c", "write -P 2 8M 1M", "base.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "mid.qcow2");
        run("qemu-io", "-c", "write -P 3 1M 512k", "-c", "write -z 8M 64k", "mid.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2", "20M");
        run("qemu-io", "-c", "write -P 4 1536k 64k", "-c", "write -P 5 17M 64k", "-c", "write -z 0 64k", "top.qcow2");
        same("top.qcow2", "qcow2", List.of(), true, maps());
    }

    @Test
    void compressedZeroAndExtendedL2() throws Exception {
        run("qemu-img", "create", "-q", "-f", "qcow2", "src.qcow2", "8M");
        run("qemu-io", "-c", "write -P 7 0 3M", "-c", "write -P 0 4M 1M", "src.qcow2");
        run("qemu-img", "convert", "-c", "-O", "qcow2", "src.qcow2", "packed.qcow2");
        run("qemu-io", "-c", "write -z 1M 128k", "-c", "write -P 8 6M 64k", "packed.qcow2");
        same("packed.qcow2", "qcow2", List.of(), true, maps());

        run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=64k", "xbase.qcow2", "8M");
        run("qemu-io", "-c", "write -P 1 0 4M", "xbase.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=64k",
                "-b", "xbase.qcow2", "-F", "qcow2", "ext.qcow2");
        run("qemu-io", "-c", "write -P 2 4k 2k", "-c", "write -z 64k 8k", "-c", "write -P 3 5M 6k",
                "-c", "write -z 6M 2k", "ext.qcow2");
        same("ext.qcow2", "qcow2", List.of(), true, maps());
    }

    @Test
    void metadataPreallocationAndRaw() throws Exception {
        run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "preallocation=metadata", "pre.qcow2", "8M");
        run("qemu-io", "-c", "write -P 1 1M 64k", "-c", "write -z 3M 128k", "-c", "write -z -u 5M 64k", "pre.qcow2");
        same("pre.qcow2", "qcow2", List.of(), true, maps());

        run("truncate", "-s", "4M", "disk.raw");
        run("qemu-io", "-f", "raw", "-c", "write -P 9 640k 192k", "-c", "write -P 9 3M 4k", "disk.raw");
        List<String[]> q = maps();
        q.add(new String[] {"--json"});
        same("disk.raw", "raw", List.of(), true, q);
    }
}
