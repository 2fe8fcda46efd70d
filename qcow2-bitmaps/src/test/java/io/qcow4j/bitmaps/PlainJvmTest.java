package io.qcow4j.bitmaps;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.storage.MappingSupport;
import io.qcow4j.testing.ChildJvm;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The library in a JVM without Chronicle's --add-opens/--add-exports flags, as an application
 * that embeds it runs: read-write opens fall back to the JDK's FileChannel.map for metadata,
 * say so once through the warnings listener, and write images QEMU finds clean, with the data
 * and the bitmap. With the flags: Chronicle's mapping and no warning.
 */
class PlainJvmTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path tmp;

    @Test
    void withoutFlagsTheJdkMappingAndOneWarning() throws Exception {
        Path img = tmp.resolve("plain.qcow2");
        List<String> out = runWriter(ChildJvm.plainCommand(List.of(), Writer.class, img.toString()));
        assertTrue(out.get(0).startsWith("mapping: JVM flags missing for Chronicle Bytes"), out.toString());
        List<String> warnings = warnings(out);
        assertEquals(1, warnings.size(), "one warning for two read-write opens: " + out);
        assertTrue(warnings.get(0).contains("the JDK's FileChannel.map"), warnings.get(0));
        assertTrue(warnings.get(0).contains("--add-opens=java.base/sun.nio.ch=ALL-UNNAMED"), warnings.get(0));
        checkImage(img);
    }

    @Test
    void withFlagsMappedAndNoWarning() throws Exception {
        Path img = tmp.resolve("flags.qcow2");
        List<String> out = runWriter(ChildJvm.command(List.of(), Writer.class, img.toString()));
        assertEquals("mapping: null", out.get(0), out.toString());
        assertEquals(List.of(), warnings(out));
        checkImage(img);
    }

    private List<String> runWriter(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "child did not finish");
        assertEquals(0, p.exitValue(), out);
        return Arrays.asList(out.split("\n"));
    }

    private static List<String> warnings(List<String> out) {
        return out.stream().filter(l -> l.startsWith("warning: ")).toList();
    }

    /** qemu-img check clean, the data as written, the bitmap in qemu-img info and its extents as written. */
    private static void checkImage(Path img) throws IOException {
        Qemu.Result check = Qemu.check(img);
        assertEquals(0, check.exitCode(), check.describe());
        List<String> reads = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            reads.add("read -P 0x5a " + (i * MIB) + " 64k");
        }
        reads.add("read -P 0xa5 " + (32 * MIB) + " " + (9 * MIB));
        reads.add("read -P 0 " + (41 * MIB) + " " + (23 * MIB));
        Qemu.io(img, reads.toArray(String[]::new)).assertOk();
        JsonNode bitmaps = Qemu.infoJson(img).path("format-specific").path("data").path("bitmaps");
        assertEquals(1, bitmaps.size(), bitmaps.toString());
        assertEquals("plain", bitmaps.get(0).path("name").asText());
        assertEquals("[\"auto\"]", bitmaps.get(0).path("flags").toString(), "stored consistent");
        List<DirtyBitmap.Extent> expected = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            expected.add(new DirtyBitmap.Extent((long) i * MIB, 64 << 10, true));
        }
        expected.add(new DirtyBitmap.Extent(32L * MIB, 9L * MIB, true));
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            assertEquals(expected, Bitmaps.of(image).get("plain").dirtyExtents());
        }
    }

    /**
     * Child: a 64 MiB image of 512-byte clusters (so that the writes below allocate dozens of
     * L2 tables and refcount blocks and grow the refcount table), a persistent bitmap, then a
     * second read-write open in the same JVM. Prints MappingSupport's verdict, then every
     * warning received.
     */
    public static final class Writer {
        public static void main(String[] args) throws Exception {
            Path img = Path.of(args[0]);
            List<String> warnings = new ArrayList<>();
            try (Qcow2Image image = Qcow2Image.create(img, io.qcow4j.core.api.CreateOptions.size(64L * MIB).clusterSize(512),
                    OpenOptions.readWrite().warnings(warnings::add))) {
                Bitmaps.of(image).add("plain");
                for (int i = 0; i < 16; i++) {
                    image.write((long) i * MIB, filled(64 << 10, 0x5a));
                }
            }
            try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite().warnings(warnings::add))) {
                image.write(32L * MIB, filled(9 * MIB, 0xa5));
            }
            System.out.println("mapping: " + MappingSupport.whyUnavailable());
            for (String w : warnings) {
                System.out.println("warning: " + w);
            }
        }

        private static ByteBuffer filled(int size, int value) {
            byte[] b = new byte[size];
            Arrays.fill(b, (byte) value);
            return ByteBuffer.wrap(b);
        }
    }
}
