package io.qcow4j.core;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Random;

import io.qcow4j.core.api.OpenOptions;

/**
 * Child process of {@link CrashSafetyTest}: opens an image read-write and writes, zeroes
 * and discards at random until it is killed.
 */
public final class CrashWriter {
    private CrashWriter() {
    }

    public static void main(String[] args) throws Exception {
        Path path = Path.of(args[0]);
        Random r = new Random(Long.parseLong(args[1]));
        try (Qcow2Image img = Qcow2Image.open(path, OpenOptions.readWrite())) {
            long size = img.size();
            int cs = img.info().clusterSize();
            System.out.println("ready");
            System.out.flush();
            for (long op = 0; ; op++) {
                long off = RandomOpsOracleTest.randomOffset(r, size, cs);
                int len = (int) Math.min(size - off, RandomOpsOracleTest.randomLength(r, cs));
                int kind = r.nextInt(10);
                if (kind < 7) {
                    byte[] data = new byte[len];
                    r.nextBytes(data);
                    img.write(off, ByteBuffer.wrap(data));
                } else if (kind < 8) {
                    img.writeZeroes(off, len);
                } else if (kind < 9) {
                    img.discard(off, len);
                } else if (r.nextBoolean() && !img.bitmaps().list().isEmpty()) {
                    // a bitmap store in the middle of the writes
                    img.storeBitmaps();
                } else {
                    // grow now and then, so refcount blocks and tables must grow too
                    img.resize(size + cs * (long) r.nextInt(64));
                    size = img.size();
                }
            }
        }
    }
}
