package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** st_blocks through statx agrees with coreutils' stat, on sparse and dense files. */
class DiskUsageTest {
    @TempDir
    Path tmp;

    @Test
    void statxMatchesStat() throws IOException {
        Path sparse = tmp.resolve("sparse file.bin");
        try (FileChannel ch = FileChannel.open(sparse, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[100_000]), 0);
            ch.write(ByteBuffer.wrap(new byte[] {1}), 50L << 20);
        }
        Path empty = Files.createFile(tmp.resolve("empty"));
        for (Path p : new Path[] {sparse, empty}) {
            long viaStat = DiskUsage.statCommandBlocks(p);
            long viaStatx = DiskUsage.statxBlocks(p);
            assertTrue(viaStat >= 0, "stat(1) should work here");
            assertEquals(viaStat, viaStatx, p.toString());
            assertEquals(viaStat * 512, DiskUsage.allocatedBytes(p));
        }
        assertTrue(DiskUsage.allocatedBytes(sparse) < Files.size(sparse) / 10, "a sparse file is counted sparse");
    }

    @Test
    void missingFileIsAnError() {
        assertEquals(-1, DiskUsage.statxBlocks(tmp.resolve("nosuch")));
        assertTrue(org.junit.jupiter.api.Assertions.assertThrows(IOException.class,
                () -> DiskUsage.allocatedBytes(tmp.resolve("nosuch"))) != null);
    }
}
