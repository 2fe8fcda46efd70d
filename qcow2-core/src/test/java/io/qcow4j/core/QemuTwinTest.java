package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The same seeded random writes, zero-writes and discards (unaligned, crossing clusters
 * and L2 tables) applied by qcow4j to one image and by qemu-io to its twin: qemu-img
 * compare finds them identical and qemu-img check finds both clean.
 */
class QemuTwinTest {

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "plain,         65536, 1.1,  false, 11",
            "small-l2,       4096, 1.1,  false, 12",
            "v2,            65536, 0.10, false, 13",
            "overlay,       65536, 1.1,  true,  14",
            "overlay-small,  4096, 1.1,  true,  15",
            "overlay-v2,    65536, 0.10, true,  16",
    })
    void sameOperationsSameImage(String name, int clusterSize, String compat, boolean overlay, long seedBase,
                                 @TempDir Path tmp) throws IOException {
        long seed = seedBase * 104729 + Long.getLong("qcow4j.seed", 0);
        Random r = new Random(seed);
        // 4 KiB clusters: an L2 table maps 2 MiB, so 12 MiB crosses several tables
        long size = 12L << 20;
        Path ours = tmp.resolve("ours.qcow2");
        Path theirs = tmp.resolve("theirs.qcow2");
        List<String> backingOpts = new ArrayList<>();
        if (overlay) {
            Path base = tmp.resolve("base.qcow2");
            Qemu.qemuImg("create", "-q", "-f", "qcow2", base.toString(), String.valueOf(size - 3 * 65536)).assertOk();
            List<String> cmds = new ArrayList<>();
            for (long off = 0; off + 65536 <= size - 3 * 65536; off += 65536) {
                if (r.nextInt(3) != 0) {
                    cmds.add("write -P 0x" + Integer.toHexString(1 + r.nextInt(255)) + " " + off + " 65536");
                }
            }
            runQemuIo(base, cmds);
        }
        CreateOptions opts = CreateOptions.size(size).clusterSize(clusterSize).compat(compat);
        if (overlay) {
            opts.backingFile("base.qcow2").backingFormat("qcow2");
            Qemu.besideImage(ours, "qemu-img", "create", "-q", "-f", "qcow2", "-o",
                    "cluster_size=" + clusterSize + ",compat=" + compat, "-b", "base.qcow2", "-F", "qcow2",
                    theirs.getFileName().toString(), String.valueOf(size)).assertOk();
        } else {
            Qemu.qemuImg("create", "-q", "-f", "qcow2", "-o", "cluster_size=" + clusterSize + ",compat=" + compat,
                    theirs.toString(), String.valueOf(size)).assertOk();
        }
        List<String> commands = new ArrayList<>();
        try (Qcow2Image img = Qcow2Image.create(ours, opts)) {
            for (int op = 0; op < 300; op++) {
                long off = RandomOpsOracleTest.randomOffset(r, size, clusterSize);
                int len = (int) Math.min(size - off, RandomOpsOracleTest.randomLength(r, clusterSize));
                int kind = r.nextInt(10);
                if (kind < 6) {
                    int pattern = r.nextInt(256);
                    byte[] data = new byte[len];
                    Arrays.fill(data, (byte) pattern);
                    img.write(off, ByteBuffer.wrap(data));
                    commands.add("write -P 0x" + Integer.toHexString(pattern) + " " + off + " " + len);
                } else if (kind < 8) {
                    img.writeZeroes(off, len);
                    commands.add("write -z " + off + " " + len);
                } else {
                    img.discard(off, len);
                    commands.add("discard " + off + " " + len);
                }
            }
        }
        runQemuIo(theirs, commands);
        for (Path p : List.of(ours, theirs)) {
            Qemu.Result check = Qemu.besideImage(p, "qemu-img", "check", p.getFileName().toString());
            assertEquals(0, check.exitCode(), "seed " + seed + ": qemu-img check " + p.getFileName() + "\n" + check.stdout() + check.stderr());
        }
        Qemu.Result cmp = Qemu.besideImage(ours, "qemu-img", "compare", ours.getFileName().toString(), theirs.getFileName().toString());
        assertEquals(0, cmp.exitCode(), "seed " + seed + ": qemu-img compare\n" + cmp.stdout() + cmp.stderr());
        assertTrue(Files.size(ours) > 0);
    }

    /** qemu-io with many -c commands, in batches to keep the command line short. */
    static void runQemuIo(Path img, List<String> commands) {
        for (int i = 0; i < commands.size(); i += 100) {
            List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", "qcow2"));
            for (String c : commands.subList(i, Math.min(commands.size(), i + 100))) {
                cmd.add("-c");
                cmd.add(c);
            }
            cmd.add(img.getFileName().toString());
            Qemu.Result res = Qemu.besideImage(img, cmd.toArray(new String[0]));
            res.assertOk();
            assertTrue(!res.stdout().contains("failed"), res.stdout());
        }
    }
}
