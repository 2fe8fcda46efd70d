package io.qcow4j.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import io.qcow4j.core.api.OpenOptions;

/**
 * Child process of {@link SnapshotCrashTest}: runs {@link #step} on an image until it is
 * killed. The steps are a pure function of the seed, so the test replays them on a
 * {@link Model} to know what every snapshot must hold.
 */
public final class SnapshotCrashWriter {
    /** What a step does: to the image, or to the model. */
    interface Target {
        void write(long offset, byte[] data) throws IOException;

        void zero(long offset, int length) throws IOException;

        void create(String name) throws IOException;

        void delete(String name) throws IOException;

        void apply(String name) throws IOException;
    }

    /** Snapshots the writer made and has not deleted, oldest first. */
    private final List<String> own = new ArrayList<>();
    private final long seed;
    private final String prefix;
    private final long size;

    SnapshotCrashWriter(long seed, String prefix, long size) {
        this.seed = seed;
        this.prefix = prefix;
        this.size = size;
    }

    /** Step {@code n}: a few writes, a snapshot, now and then a delete and an apply. */
    void step(int n, Target t) throws IOException {
        Random r = new Random(seed * 1_000_003L + n);
        for (int k = 0; k < 3; k++) {
            long off = r.nextInt((int) size);
            int len = (int) Math.min(size - off, 1 + r.nextInt(200_000));
            if (r.nextInt(4) == 0) {
                t.zero(off, len);
            } else {
                byte[] d = new byte[len];
                Arrays.fill(d, (byte) (1 + r.nextInt(255)));
                t.write(off, d);
            }
        }
        String name = prefix + n;
        t.create(name);
        own.add(name);
        if (own.size() > 3) {
            t.delete(own.remove(r.nextInt(own.size())));
        }
        if (n % 3 == 0) {
            t.apply(own.get(r.nextInt(own.size())));
        }
    }

    public static void main(String[] args) throws Exception {
        Path path = Path.of(args[0]);
        try (Qcow2Image img = Qcow2Image.open(path, OpenOptions.readWrite())) {
            SnapshotCrashWriter w = new SnapshotCrashWriter(Long.parseLong(args[1]), args[2], img.size());
            Target t = new Target() {
                @Override
                public void write(long offset, byte[] data) throws IOException {
                    img.write(offset, ByteBuffer.wrap(data));
                }

                @Override
                public void zero(long offset, int length) throws IOException {
                    img.writeZeroes(offset, length);
                }

                @Override
                public void create(String name) throws IOException {
                    img.snapshots().create(name);
                }

                @Override
                public void delete(String name) throws IOException {
                    img.snapshots().delete(name);
                }

                @Override
                public void apply(String name) throws IOException {
                    img.snapshots().apply(name);
                }
            };
            System.out.println("ready");
            System.out.flush();
            for (int n = 1; ; n++) {
                w.step(n, t);
            }
        }
    }
}
