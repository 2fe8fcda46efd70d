package io.qcow4j.tools.dump;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class Qcow2DumpTest {
    @Test
    void subclusterRanges() {
        assertEquals("", L1L2Section.ranges(0));
        assertEquals("0", L1L2Section.ranges(1));
        assertEquals("0-31", L1L2Section.ranges(0xffffffffL));
        assertEquals("0,5", L1L2Section.ranges(0x21));
        assertEquals("0-3,7-31", L1L2Section.ranges(0xffffff8fL));
        assertEquals("31", L1L2Section.ranges(0x80000000L));
    }

    /** Refcounts of every width: count of non-zero entries, smallest and largest. */
    @Test
    void refcountStatsOfEveryWidth() {
        // 1 bit: LSB first, bits 0 and 3 set
        assertArrayEquals(new long[] {2, 1, 1}, RefcountSection.stats(ByteBuffer.wrap(new byte[] {0x09, 0}), 0));
        // 2 bits: entries 0 = 1, 1 = 3 (byte 0b0000_1101)
        assertArrayEquals(new long[] {2, 1, 3}, RefcountSection.stats(ByteBuffer.wrap(new byte[] {0x0d}), 1));
        // 4 bits: low nibble first: 2, 7
        assertArrayEquals(new long[] {2, 2, 7}, RefcountSection.stats(ByteBuffer.wrap(new byte[] {0x72, 0}), 2));
        assertArrayEquals(new long[] {2, 5, 200}, RefcountSection.stats(ByteBuffer.wrap(new byte[] {5, 0, (byte) 200}), 3));
        assertArrayEquals(new long[] {2, 1, 0xfffe},
                RefcountSection.stats(ByteBuffer.allocate(8).putShort(0, (short) 1).putShort(4, (short) 0xfffe), 4));
        assertArrayEquals(new long[] {1, 0xffffffffL, 0xffffffffL},
                RefcountSection.stats(ByteBuffer.allocate(8).putInt(4, -1), 5));
        // 64 bits, unsigned
        assertArrayEquals(new long[] {2, 3, -1L}, RefcountSection.stats(ByteBuffer.allocate(24).putLong(0, 3).putLong(16, -1L), 6));
        assertArrayEquals(new long[] {0, -1L, 0}, RefcountSection.stats(ByteBuffer.allocate(16), 4));
    }

    @Test
    void unsignedNumbers() {
        assertEquals(5L, DumpValues.u64(5));
        assertEquals(new BigInteger("18446744073709551615"), DumpValues.u64(-1));
        assertEquals(0xffffffffL, DumpValues.u32(-1));
        assertEquals("0x8000000000050000", DumpValues.rawHex(0x8000000000050000L));
    }

    @Test
    void humanForm() {
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("magic", 0x514649fbL);
        header.put("l1_table_offset", 0x30000L);
        header.put("size", 1024L);
        header.put("autoclear_feature_names", List.of("bitmaps"));
        header.put("compatible_feature_names", List.of());
        Map<String, Object> e1 = new LinkedHashMap<>();
        e1.put("index", 0L);
        e1.put("offset", 0x30000L);
        e1.put("copied", true);
        Map<String, Object> e2 = new LinkedHashMap<>();
        e2.put("index", 17L);
        e2.put("offset", 0x30088L);
        e2.put("copied", false);
        e2.put("reserved", "0x0000000000000001");
        Map<String, Object> l1 = new LinkedHashMap<>();
        l1.put("l1_size", 18L);
        l1.put("entries", List.of(e1, e2));
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("header", header);
        doc.put("l1", l1);
        doc.put("extensions", List.of());
        doc.put("type", List.of(Map.of("type", 0xe2792acaL), Map.of("type", 1L)));
        assertEquals("""
                header:
                  magic:                    0x514649fb
                  l1_table_offset:          0x30000
                  size:                     1024
                  autoclear_feature_names:  bitmaps
                  compatible_feature_names: (none)

                l1:
                  l1_size: 18
                  entries: 2
                    index  offset   copied  reserved
                    0      0x30000  true
                    17     0x30088  false   0x0000000000000001

                extensions: (none)

                type: 2
                  type
                  0xe2792aca
                  1
                """, DumpText.render(doc));
    }
}
