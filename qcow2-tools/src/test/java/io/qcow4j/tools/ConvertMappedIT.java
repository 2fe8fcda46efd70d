package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Convert's mapped source (ConvertCopy reads a raw file, and a read-only qcow2 image's
 * runs of data clusters, through mappings of its own): the copy is byte for byte
 * qemu-img's, whatever the source's layout, and a source file cut short while it is
 * being copied is one clean read error, never a crash of the JVM.
 */
class ConvertMappedIT {
    private static final int MIB = 1 << 20;
    /** Several of convert's 4 MiB batches, an odd tail, data and zero runs. */
    private static final int SIZE = 21 * MIB + 12345 * 512;

    @TempDir
    Path tmp;

    /** Seeded data: a zero MiB every third MiB, a 4 KiB zero piece in others, and the last sectors zero. */
    private Path rawSource(String name) throws IOException {
        return rawSource(name, true);
    }

    /** As {@link #rawSource(String)}; without zero pieces (a batch with one is read, not mapped) when not {@code pieces}. */
    private Path rawSource(String name, boolean pieces) throws IOException {
        long seed = Long.getLong("qcow4j.seed", 20261207L);
        Random r = new Random(seed);
        byte[] b = new byte[SIZE];
        r.nextBytes(b);
        for (int m = 0; m < SIZE / MIB; m++) {
            if (m % 3 == 1) {
                java.util.Arrays.fill(b, m * MIB, (m + 1) * MIB, (byte) 0);
            } else if (m % 3 == 2 && pieces) {
                java.util.Arrays.fill(b, m * MIB + 8192, m * MIB + 12288, (byte) 0);
            }
        }
        java.util.Arrays.fill(b, SIZE - 4096, SIZE, (byte) 0);
        Path p = tmp.resolve(name);
        Files.write(p, b);
        return p;
    }

    private void assertSameBytes(String a, String b) throws IOException {
        assertEquals(Files.size(tmp.resolve(a)), Files.size(tmp.resolve(b)), a + " vs " + b);
        assertEquals(-1, Files.mismatch(tmp.resolve(a), tmp.resolve(b)), a + " and " + b + " differ");
    }

    @ParameterizedTest
    @ValueSource(strings = {"4k", "0", "64k"})
    void rawToQcow2AndBack(String sparse) throws IOException {
        rawSource("src.raw");
        qcow4j(tmp, "convert", "-S", sparse, "-O", "qcow2", "src.raw", "j.qcow2").assertOk();
        qemuImg(tmp, "convert", "-S", sparse, "-O", "qcow2", "src.raw", "q.qcow2").assertOk();
        assertEquals(0, qemuImg(tmp, "check", "j.qcow2").exitCode());
        assertEquals(0, qemuImg(tmp, "compare", "src.raw", "j.qcow2").exitCode());
        // the same clusters allocated as qemu-img's (zero detection on the mapped pages)
        assertEquals(qemuImg(tmp, "map", "--output=json", "q.qcow2").stdout()
                        .replaceAll("\"offset\": \\d+", "\"offset\": _"),
                qemuImg(tmp, "map", "--output=json", "j.qcow2").stdout()
                        .replaceAll("\"offset\": \\d+", "\"offset\": _"));
        // and back: a qcow2 source in one host run, mapped too
        qcow4j(tmp, "convert", "-S", sparse, "-O", "raw", "q.qcow2", "j.raw").assertOk();
        qemuImg(tmp, "convert", "-S", sparse, "-O", "raw", "q.qcow2", "q.raw").assertOk();
        assertSameBytes("src.raw", "j.raw");
        assertSameBytes("q.raw", "j.raw");
    }

    /**
     * qcow2 sources whose batches are not one host run: clusters written in reverse order,
     * extended L2 with partly allocated clusters, compressed clusters, a backing file.
     */
    @Test
    void qcow2SourcesOfEveryLayout() throws IOException {
        rawSource("src.raw");
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "rev.qcow2",
                String.valueOf(SIZE)).assertOk();
        StringBuilder writes = new StringBuilder();
        for (int m = SIZE / MIB - 1; m >= 0; m -= 2) {
            writes.append("write -P ").append(m + 1).append(' ').append(m * MIB).append(" 1M\n");
        }
        writes.append("write -P 7 ").append(3 * MIB + 4096).append(" 4k\n"); // one subcluster of a cluster
        for (String w : writes.toString().split("\n")) {
            assertEquals(0, Qemu.qemuIo("-c", w, tmp.resolve("rev.qcow2").toString()).exitCode(), w);
        }
        qemuImg(tmp, "convert", "-c", "-O", "qcow2", "src.raw", "z.qcow2").assertOk();
        qemuImg(tmp, "convert", "-O", "qcow2", "src.raw", "base.qcow2").assertOk();
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2").assertOk();
        assertEquals(0, Qemu.qemuIo("-c", "write -P 9 5M 3M", tmp.resolve("top.qcow2").toString()).exitCode());
        for (String src : new String[] {"rev.qcow2", "z.qcow2", "top.qcow2"}) {
            qcow4j(tmp, "convert", "-O", "raw", src, "j.raw").assertOk();
            qemuImg(tmp, "convert", "-O", "raw", src, "q.raw").assertOk();
            assertSameBytes("q.raw", "j.raw");
            qcow4j(tmp, "convert", "-O", "qcow2", src, "j.qcow2").assertOk();
            assertEquals(0, qemuImg(tmp, "check", "j.qcow2").exitCode(), src);
            assertEquals(0, qemuImg(tmp, "compare", src, "j.qcow2").exitCode(), src);
            Files.delete(tmp.resolve("j.raw"));
            Files.delete(tmp.resolve("q.raw"));
            Files.delete(tmp.resolve("j.qcow2"));
        }
    }

    static java.util.stream.Stream<org.junit.jupiter.params.provider.Arguments> cuts() {
        java.util.List<org.junit.jupiter.params.provider.Arguments> all = new java.util.ArrayList<>();
        for (String source : new String[] {"raw", "qcow2"}) {
            for (String target : new String[] {"raw", "qcow2"}) {
                for (long sparse : new long[] {4096, 0}) {
                    all.add(org.junit.jupiter.params.provider.Arguments.of(source, target, sparse));
                }
            }
        }
        return all.stream();
    }

    /**
     * The source file is cut to 1 MiB once the first batch is written and the reader holds
     * a later batch mapped: the pages under that mapping are gone (a fault, in the JVM or in
     * the kernel's copy of the write), and the copy stops with one read error, the JVM alive.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.MethodSource("cuts")
    void sourceCutShortWhileCopying(String format, String targetFormat, long sparse) throws IOException {
        rawSource("src.raw", false);
        Path src = tmp.resolve("src.raw");
        if (format.equals("qcow2")) {
            qemuImg(tmp, "convert", "-O", "qcow2", "src.raw", "src.qcow2").assertOk();
            src = tmp.resolve("src.qcow2");
        }
        qemuImg(tmp, "create", "-q", "-f", targetFormat, "out", String.valueOf(SIZE)).assertOk();
        try (BlockDevice target = Images.open(tmp.resolve("out").toString(), targetFormat, true, false);
             BlockDevice in = Images.open(src.toString(), format, false, false)) {
            long firstBatch = 0; // where the first batch lies in the source's file
            if (format.equals("qcow2")) {
                com.fasterxml.jackson.databind.JsonNode map = Cli.json(qemuImg(tmp, "map", "--output=json",
                        "src.qcow2").assertOk().stdout());
                for (com.fasterxml.jackson.databind.JsonNode e : map) {
                    if (e.get("data").asBoolean()) {
                        firstBatch = e.get("offset").asLong();
                        break;
                    }
                }
            }
            Progress bar = new Progress(new PrintWriter(new CutOnFirstWrite(src, firstBatch)), true, SIZE);
            ConvertCopy copy = new ConvertCopy(in, target, new ConvertCopy.Mode(sparse, false, true, false), bar);
            CliException e = assertThrows(CliException.class, () -> copy.run(SIZE));
            assertTrue(e.getMessage().matches("error while reading at byte \\d+: the source file was cut short"
                    + " while being read \\(now 1048576 bytes\\)"), e.getMessage());
        }
        if (targetFormat.equals("qcow2")) {
            // a write that failed half-way leaks at worst
            Qemu.Result check = qemuImg(tmp, "check", "out");
            assertTrue(check.exitCode() == 0 || check.exitCode() == 3, check.describe());
        }
    }

    /** On the progress bar's first words (after the first batch): waits until a later batch is mapped, then cuts. */
    private static final class CutOnFirstWrite extends Writer {
        private final Path file;
        private boolean cut;

        private final long firstBatch;

        CutOnFirstWrite(Path file, long firstBatch) {
            this.file = file;
            this.firstBatch = firstBatch;
        }

        @Override
        public void write(char[] cbuf, int off, int len) {
            if (cut || new String(cbuf, off, len).contains("(0.00/")) {
                return; // the bar's first words are said before any copy
            }
            cut = true;
            try {
                long deadline = System.nanoTime() + 20_000_000_000L;
                while (!mapped(file, firstBatch) && System.nanoTime() < deadline) {
                    Thread.sleep(1);
                }
                assertTrue(mapped(file, firstBatch), "the reader never mapped a batch of " + file);
                try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
                    f.setLength(MIB);
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        /**
         * A batch of the file mapped past the first one (which was just written: the reader
         * unmaps it when it next takes a free slot, so it may still be there).
         */
        private static boolean mapped(Path file, long firstBatch) throws IOException {
            String name = file.toRealPath().toString();
            return Files.readAllLines(Path.of("/proc/self/maps")).stream().filter(l -> l.endsWith(" " + name))
                    .anyMatch(l -> Long.parseLong(l.split("\\s+")[2], 16) > firstBatch);
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    }
}
