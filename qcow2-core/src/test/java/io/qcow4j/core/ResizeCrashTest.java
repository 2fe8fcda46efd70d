package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.bitmap.PersistentBitmap;
import io.qcow4j.testing.ChildJvm;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A child process shrinks, grows and writes an overlay in a loop until it is killed
 * (issue 16). The overlay starts fully written with 0x22 over a longer backing file of
 * 0x11 and is only ever written with 0x22, so every byte must read 0x22 or zero: 0x11 is
 * the backing file showing through a range a shrink unmapped or a grow exposed. After each
 * kill qemu-img check finds at worst leaked clusters, and the disk reads whole.
 */
class ResizeCrashTest {
    private static final long BASE = 4L << 20;

    @Test
    void killedResizerLeavesLeaksAtWorstAndNoStaleByte(@TempDir Path tmp) throws Exception {
        long seed = 20261206L + Long.getLong("qcow4j.seed", 0);
        Random r = new Random(seed);
        Path base = tmp.resolve("base.qcow2");
        Qemu.create(base, String.valueOf(BASE));
        Qemu.io(base, "write -P 0x11 0 " + BASE).assertOk();
        for (String opts : List.of("extended_l2=off,cluster_size=65536", "extended_l2=on,cluster_size=32768")) {
            Path img = tmp.resolve("top.qcow2");
            Qemu.besideImage(img, "qemu-img", "create", "-q", "-f", "qcow2", "-o", opts, "-b", "base.qcow2", "-F", "qcow2",
                    "top.qcow2", "2M").assertOk();
            Qemu.io(img, "write -P 0x22 0 2M").assertOk();
            Qemu.besideImage(img, "qemu-img", "bitmap", "--add", "top.qcow2", "b").assertOk();
            for (int round = 0; round < 3; round++) {
                long childSeed = r.nextLong();
                String what = "seed " + seed + " " + opts + " round " + round + " child seed " + childSeed;
                Process p = new ProcessBuilder(ChildJvm.command(List.of(), Writer.class, img.toString(), Long.toString(childSeed)))
                        .redirectError(ProcessBuilder.Redirect.DISCARD).start();
                try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                    assertEquals("ready", out.readLine(), "writer did not start: " + what);
                    Thread.sleep(30 + r.nextInt(300));
                    p.destroyForcibly();
                    assertTrue(p.waitFor(30, TimeUnit.SECONDS), what);
                }
                Qemu.Result check = Qemu.check(img);
                assertTrue(check.exitCode() == 0 || check.exitCode() == 3, "corruption after kill: " + what + "\n" + check.describe());
                try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
                    ByteBuffer all = ByteBuffer.allocate((int) image.size());
                    image.read(0, all);
                    byte[] b = all.array();
                    for (int i = 0; i < b.length; i++) {
                        if (b[i] != 0 && b[i] != 0x22) {
                            throw new AssertionError(what + ": reads " + b[i] + " at " + i + " (size " + b.length + ")");
                        }
                    }
                }
                // a kill may leave the bitmap in_use; a resize refuses such a bitmap, so renew it
                try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
                    PersistentBitmap b = image.bitmaps().get("b");
                    if (b.isInconsistent()) {
                        image.bitmaps().remove(b);
                        image.bitmaps().add("b", 65536, true, true);
                    }
                }
            }
        }
    }

    /** The child: opens the overlay and shrinks, grows and writes 0x22 until killed. */
    public static final class Writer {
        private Writer() {
        }

        public static void main(String[] args) throws Exception {
            Path path = Path.of(args[0]);
            Random r = new Random(Long.parseLong(args[1]));
            try (Qcow2Image img = Qcow2Image.open(path, OpenOptions.readWrite())) {
                System.out.println("ready");
                System.out.flush();
                while (true) {
                    long size = img.size();
                    if (r.nextInt(3) == 0) {
                        long off = 512L * r.nextInt((int) (size / 512));
                        int len = (int) Math.min(size - off, 1 + r.nextInt(200_000));
                        byte[] data = new byte[len];
                        Arrays.fill(data, (byte) 0x22);
                        img.write(off, ByteBuffer.wrap(data));
                        continue;
                    }
                    long newSize = 512L * (128 + r.nextInt((int) ((BASE + (1 << 20)) / 512) - 128));
                    if (newSize < size) {
                        img.resizeDiscarding(newSize);
                    } else {
                        img.resize(newSize);
                    }
                }
            }
        }
    }
}
