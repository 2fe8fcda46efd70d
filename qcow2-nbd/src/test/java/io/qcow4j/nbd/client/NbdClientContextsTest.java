package io.qcow4j.nbd.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.nbd.protocol.Nbd;
import io.qcow4j.testing.NbdExport;
import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The client against {@code qemu-nbd -A -B NAME...} serving the reference images: every
 * meta context's extents equal what {@code nbdinfo --map=CONTEXT} prints, the data read
 * equals {@code qemu-img convert}'s copy, and {@link NbdClient#blockStatus} agrees with
 * the engine's block status of the same file (allocated, zero, data, depth).
 */
class NbdClientContextsTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"bitmaps.qcow2", "chain-top.qcow2", "zlib-compressed.qcow2", "zero-clusters.qcow2",
        "extended-l2-backed.qcow2"})
    void extentsDataAndStatusMatchTheOracles(String name) throws IOException {
        Path img = TestData.image(name);
        List<String> bitmaps = bitmapNames(img);
        List<String> args = new ArrayList<>(List.of("-r", "-e", "2", "-f", "qcow2", "-A"));
        List<String> contexts = new ArrayList<>(List.of(Nbd.CONTEXT_BASE_ALLOCATION, Nbd.CONTEXT_ALLOCATION_DEPTH));
        for (String b : bitmaps) {
            args.add("-B");
            args.add(b);
            contexts.add(Nbd.CONTEXT_DIRTY_BITMAP_PREFIX + b);
        }
        Path raw = tmp.resolve("copy.raw");
        Qemu.convertToRaw(img, raw);
        try (NbdExport nbd = NbdExport.qemuNbd(img, args.toArray(String[]::new));
             NbdClient client = NbdClient.connect(NbdUri.parse(nbd.uri()),
                     NbdClient.Options.defaults().withMetaContexts(contexts.toArray(String[]::new)));
             Qcow2Image local = Qcow2Image.open(img, OpenOptions.readOnly())) {
            assertEquals(sorted(contexts), sorted(client.metaContexts()));
            assertTrue(client.structuredReplies() && client.isReadOnly());
            for (String context : contexts) {
                assertEquals(nbdinfoMap(nbd.uri(), context), merged(client, context), name + " " + context);
            }
            ByteBuffer all = ByteBuffer.allocate((int) client.size());
            client.read(0, all);
            assertArrayEquals(Files.readAllBytes(raw), all.array(), name);
            assertSameStatus(local, client, name);
        }
    }

    /** One extent per request (REQ_ONE) gives the same runs, one round trip each. */
    @Test
    void oneExtentPerRequestGivesTheSameRuns() throws IOException {
        Path img = TestData.image("chain-top.qcow2");
        try (NbdExport nbd = NbdExport.qemuNbd(img, "-r", "-e", "2", "-f", "qcow2", "-A");
             NbdClient client = NbdClient.connect(NbdUri.parse(nbd.uri()),
                     NbdClient.Options.defaults().withOneExtentPerRequest(true))) {
            for (String context : client.metaContexts()) {
                for (long pos = 0; pos < client.size(); ) {
                    List<NbdClient.Extent> one = client.extents(context, pos, client.size() - pos);
                    assertEquals(1, one.size());
                    pos = one.get(0).end();
                }
                assertEquals(nbdinfoMap(nbd.uri(), context), merged(client, context), context);
            }
        }
    }

    @Test
    void listsTheServersContexts() throws IOException {
        Path img = TestData.image("bitmaps.qcow2");
        try (NbdExport nbd = NbdExport.qemuNbd(img, "-r", "-f", "qcow2", "-A", "-B", "b-enabled", "-B", "b-disabled",
                "-x", "vda")) {
            NbdUri uri = NbdUri.parse(nbd.uri("vda"));
            assertEquals(List.of("base:allocation", "qemu:allocation-depth", "qemu:dirty-bitmap:b-disabled",
                    "qemu:dirty-bitmap:b-enabled"), sorted(NbdClient.listMetaContexts(uri, NbdClient.Options.defaults())));
            assertEquals(List.of("qemu:dirty-bitmap:b-disabled", "qemu:dirty-bitmap:b-enabled"),
                    sorted(NbdClient.listMetaContexts(uri, NbdClient.Options.defaults(), "qemu:dirty-bitmap:")));
        }
    }

    /**
     * Walks both devices run by run. The export may know more than the engine: qemu reports
     * zero where a data cluster lies in a hole of the host file, and a run past the end of
     * a backing file as allocated (reading zeros) by that backing file.
     */
    private static void assertSameStatus(Qcow2Image local, NbdClient nbd, String name) throws IOException {
        for (long pos = 0; pos < nbd.size(); ) {
            BlockStatus a = local.blockStatus(pos, nbd.size() - pos);
            BlockStatus b = nbd.blockStatus(pos, nbd.size() - pos);
            String at = name + " at " + pos + ": " + a + " / " + b;
            assertEquals(a.data(), b.data(), at);
            assertTrue(!a.zero() || b.zero(), at);
            if (a.allocated()) {
                assertTrue(b.allocated(), at);
                assertEquals(a.depth(), b.depth(), at);
            } else {
                assertTrue(!b.allocated() || b.zero(), at);
            }
            pos += Math.min(a.length(), b.length());
        }
    }

    /** The client's extents of {@code context} over the whole export, adjacent runs of equal flags merged. */
    static List<String> merged(NbdClient client, String context) throws IOException {
        List<long[]> runs = new ArrayList<>();
        for (long pos = 0; pos < client.size(); ) {
            List<NbdClient.Extent> list = client.extents(context, pos, client.size() - pos);
            assertTrue(!list.isEmpty() && list.get(0).offset() == pos, "extents start where asked");
            for (NbdClient.Extent e : list) {
                add(runs, e.offset(), e.length(), e.flags());
                pos = e.end();
            }
        }
        return format(runs);
    }

    /** {@code nbdinfo --map=CONTEXT}, adjacent runs of equal type merged, as "start length type". */
    static List<String> nbdinfoMap(String uri, String context) {
        String out = Qemu.run("nbdinfo", "--map=" + context, uri).assertOk().stdout();
        List<long[]> runs = new ArrayList<>();
        for (String line : out.split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length >= 3) {
                add(runs, Long.parseLong(f[0]), Long.parseLong(f[1]), Long.parseLong(f[2]));
            }
        }
        return format(runs);
    }

    private static void add(List<long[]> runs, long start, long length, long type) {
        long[] last = runs.isEmpty() ? null : runs.get(runs.size() - 1);
        if (last != null && last[2] == type && last[0] + last[1] == start) {
            last[1] += length;
        } else {
            runs.add(new long[] {start, length, type});
        }
    }

    private static List<String> format(List<long[]> runs) {
        return runs.stream().map(r -> r[0] + " " + r[1] + " " + r[2]).toList();
    }

    private static List<String> sorted(List<String> list) {
        return list.stream().sorted().toList();
    }

    private static List<String> bitmapNames(Path img) {
        List<String> names = new ArrayList<>();
        Qemu.infoJson(img).path("format-specific").path("data").path("bitmaps")
                .forEach(b -> names.add(b.path("name").asText()));
        return names;
    }
}
