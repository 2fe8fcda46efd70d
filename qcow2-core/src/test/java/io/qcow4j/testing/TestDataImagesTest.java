package io.qcow4j.testing;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The committed reference images are what qemu-img says they are. */
class TestDataImagesTest {
    static final List<String> EXPECTED = List.of(
            "bitmaps-inuse.qcow2", "bitmaps.qcow2", "chain-base.qcow2", "chain-mid.qcow2", "chain-top.qcow2",
            "cluster-2m.qcow2", "cluster-512.qcow2", "data-file.qcow2", "empty.qcow2",
            "extended-l2-backed.qcow2", "extended-l2-base.qcow2", "extended-l2.qcow2", "lazy-dirty.qcow2",
            "raw-backed.qcow2", "refcount-bits-1.qcow2", "refcount-bits-64.qcow2", "snapshot.qcow2",
            "v2.qcow2", "zero-clusters.qcow2", "zlib-compressed.qcow2", "zstd-compressed.qcow2");

    static List<String> images() {
        return TestData.qcow2Images();
    }

    @Test
    void everyImageIsThere() {
        assertEquals(EXPECTED, TestData.qcow2Images());
        TestData.image("data-file.data");
        TestData.image("raw-backing.raw");
    }

    @ParameterizedTest
    @MethodSource("images")
    void infoJsonParses(String name) {
        JsonNode info = Qemu.infoJson(TestData.image(name));
        assertEquals("qcow2", info.path("format").asText(), name);
        assertTrue(info.path("virtual-size").asLong() > 0, name);
    }

    @ParameterizedTest
    @MethodSource("images")
    void checkPasses(String name) {
        Qemu.Result r = Qemu.check(TestData.image(name));
        if (name.equals("lazy-dirty.qcow2")) {
            // dirty bit set, refcounts of the crashed write never stored: a read-only check
            // sees 4 referenced clusters with refcount 0, each also failing the COPIED check
            r.assertExit(2);
            JsonNode json = Qemu.checkJson(TestData.image(name));
            assertEquals(8, json.path("corruptions").asInt(), r.describe());
            assertEquals(0, json.path("leaks").asInt(), r.describe());
        } else {
            // an in_use bitmap (bitmaps-inuse.qcow2) is no check error in qemu 7.2
            r.assertOk();
        }
    }

    @Test
    void lazyDirtyHasTheDirtyFlag() {
        JsonNode info = Qemu.infoJson(TestData.image("lazy-dirty.qcow2"));
        assertTrue(info.path("dirty-flag").asBoolean(), info.toString());
        assertTrue(info.path("format-specific").path("data").path("lazy-refcounts").asBoolean());
    }

    @Test
    void inUseBitmapIsFlagged() {
        JsonNode bitmaps = Qemu.infoJson(TestData.image("bitmaps-inuse.qcow2"))
                .path("format-specific").path("data").path("bitmaps");
        assertEquals("b-inuse", bitmaps.path(0).path("name").asText());
        assertEquals("[\"in-use\",\"auto\"]", bitmaps.path(0).path("flags").toString());
    }
}
