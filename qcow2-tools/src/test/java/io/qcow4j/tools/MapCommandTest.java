package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.bitmaps.DirtyBitmap;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import org.junit.jupiter.api.Test;

class MapCommandTest {
    private static MapCommand.Entry entry(long start, long length, int depth, boolean zero, boolean data, long offset, String file) {
        return new MapCommand.Entry(start, length, depth, true, zero, data, offset, file);
    }

    @Test
    void hexColumnsAsCPrintf() {
        assertEquals("0               ", MapCommand.hex16(0));
        assertEquals("0x10000         ", MapCommand.hex16(0x10000));
        assertEquals("0x7fffffffffffffff", MapCommand.hex16(Long.MAX_VALUE));
    }

    /** qemu-img's entry_mergeable: same flags, same file, contiguous host offsets. */
    @Test
    void mergeRules() {
        MapCommand.Entry a = entry(0, 4096, 0, false, true, 65536, "a");
        assertTrue(a.mergeable(entry(4096, 4096, 0, false, true, 69632, "a")));
        assertFalse(a.mergeable(entry(4096, 4096, 0, false, true, 73728, "a")));
        assertFalse(a.mergeable(entry(4096, 4096, 0, false, true, 69632, "b")));
        assertFalse(a.mergeable(entry(4096, 4096, 1, false, true, 69632, "a")));
        assertFalse(a.mergeable(entry(4096, 4096, 0, true, false, 69632, "a")));
        assertFalse(entry(0, 0, 0, false, true, 65536, "a").mergeable(entry(0, 4096, 0, false, true, 65536, "a")));
        MapCommand.Entry compressed = entry(0, 65536, 0, false, true, -1, null);
        assertTrue(compressed.mergeable(entry(65536, 65536, 0, false, true, -1, null)));
        assertFalse(compressed.mergeable(a));
        assertEquals("{ \"start\": 0, \"length\": 4096, \"depth\": 0, \"present\": true, \"zero\": false, \"data\": true, \"offset\": 65536}",
                a.toJson());
        assertEquals("{ \"start\": 0, \"length\": 65536, \"depth\": 0, \"present\": true, \"zero\": false, \"data\": true}",
                compressed.toJson());
    }

    @Test
    void bitmapLayouts() {
        List<DirtyBitmap.Extent> extents = List.of(new DirtyBitmap.Extent(0, 65536, true),
                new DirtyBitmap.Extent(65536, 131072, false), new DirtyBitmap.Extent(196608, 512, true));
        StringWriter json = new StringWriter();
        MapCommand.printBitmap(new PrintWriter(json), true, extents);
        assertEquals("""
                [{ "start": 0, "length": 65536, "dirty": true},
                { "start": 65536, "length": 131072, "dirty": false},
                { "start": 196608, "length": 512, "dirty": true}]
                """, json.toString());
        StringWriter human = new StringWriter();
        MapCommand.printBitmap(new PrintWriter(human), false, extents);
        assertEquals("""
                Offset          Length
                0               0x10000
                0x30000         0x200
                """, human.toString());
        StringWriter empty = new StringWriter();
        MapCommand.printBitmap(new PrintWriter(empty), true, List.of());
        assertEquals("[]\n", empty.toString());
    }
}
