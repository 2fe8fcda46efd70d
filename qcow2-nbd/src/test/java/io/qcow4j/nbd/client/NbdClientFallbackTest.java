package io.qcow4j.nbd.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.nbd.protocol.Nbd;
import io.qcow4j.testing.NbdExport;
import io.qcow4j.testing.Patterns;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/**
 * Servers that are not qemu-nbd, played by nbdkit: without structured replies, without
 * fixed newstyle (OPT_EXPORT_NAME only), oldstyle, with block size constraints that
 * refuse unaligned or oversized requests, and with a plugin that reports extents a few
 * at a time. The client reads and writes correctly through each.
 */
class NbdClientFallbackTest {
    private static final int MIB = 1 << 20;

    /** nbdkit's memory plugin (8 MiB, sparse) behind each handshake variant. */
    @ParameterizedTest
    @ValueSource(strings = {"--no-sr", "--mask-handshake=0", "--oldstyle", "--newstyle"})
    void oldServersStillReadAndWrite(String variant) throws IOException {
        try (NbdExport nbd = NbdExport.nbdkit(variant, "memory", "8M");
             NbdClient client = NbdClient.connect(nbd.uri())) {
            boolean modern = variant.equals("--newstyle");
            assertEquals(modern, client.structuredReplies(), variant);
            assertEquals(modern ? List.of(Nbd.CONTEXT_BASE_ALLOCATION) : List.of(), client.metaContexts(), variant);
            assertEquals(8 * MIB, client.size());
            roundTrip(client, 3 * MIB + 7, 2 * MIB + 11);
            BlockStatus st = client.blockStatus(0, client.size());
            if (modern) {
                assertTrue(st.zero() && !st.data() && st.length() == 3 * MIB, st.toString());
            } else {
                // nothing to ask: everything is data, as QEMU's client reports it
                assertEquals(new BlockStatus(0, 8 * MIB, true, false, true, 0, 0, false), st);
            }
        }
    }

    /**
     * A server that errors on any request not aligned to 4 KiB or over 64 KiB: unaligned
     * reads and writes are widened (read-modify-write), large ones split.
     */
    @Test
    void blockSizeConstraintsAreRespected() throws IOException {
        try (NbdExport nbd = NbdExport.nbdkit("--filter=blocksize-policy", "memory", "4M",
                "blocksize-minimum=4096", "blocksize-preferred=4096", "blocksize-maximum=65536",
                "blocksize-error-policy=error");
             NbdClient client = NbdClient.connect(nbd.uri())) {
            assertEquals(4096, client.minimumBlockSize());
            assertEquals(65536, client.maximumBlockSize());
            roundTrip(client, 4097, MIB + 5);
            roundTrip(client, 3 * MIB - 1, 2);
            client.writeZeroes(4097 + 100, 10_000);
            ByteBuffer b = ByteBuffer.allocate(10_000);
            client.read(4097 + 100, b);
            assertTrue(Patterns.matches(b.array(), 0));
            ByteBuffer before = ByteBuffer.allocate(100);
            client.read(4097, before);
            assertTrue(Patterns.matches(before.array(), 0x33));
            client.trim(1, 2 * MIB); // whole blocks only, advisory
            client.flush();
        }
    }

    /** A plugin that answers each block status request with two extents of 64 KiB: the client asks again. */
    @Test
    void fewerExtentsThanAskedForAreFollowedUp() throws IOException {
        // two 64 KiB extents from the offset asked for; even ones hole,zero, odd ones data
        String extents = "for s in $4 $(( $4 + 65536 )); do"
                + " if [ $(( s / 65536 % 2 )) = 0 ]; then echo \"$s 65536 hole,zero\"; else echo \"$s 65536\"; fi; done";
        try (NbdExport nbd = NbdExport.nbdkit("eval", "get_size=echo 1M",
                "pread=dd if=/dev/zero count=$3 iflag=count_bytes status=none", "extents=" + extents);
             NbdClient client = NbdClient.connect(nbd.uri())) {
            List<NbdClient.Extent> first = client.extents(Nbd.CONTEXT_BASE_ALLOCATION, 0, MIB);
            assertTrue(first.get(first.size() - 1).end() < MIB, "the server sent fewer extents: " + first);
            long pos = 0;
            int runs = 0;
            while (pos < MIB) {
                for (NbdClient.Extent e : client.extents(Nbd.CONTEXT_BASE_ALLOCATION, pos, MIB - pos)) {
                    assertEquals(pos, e.offset());
                    assertEquals(65536, e.length());
                    assertEquals(runs % 2 == 0 ? 3 : 0, e.flags(), "run " + runs);
                    pos = e.end();
                    runs++;
                }
            }
            assertEquals(16, runs);
            BlockStatus st = client.blockStatus(65536, MIB - 65536);
            assertTrue(st.data() && !st.zero() && st.length() == 65536, st.toString());
        }
    }

    /** Writes a pattern at [offset, offset + length); it reads back, and the bytes on each side are unchanged. */
    private static void roundTrip(NbdClient client, long offset, int length) throws IOException {
        ByteBuffer before = ByteBuffer.allocate(length + 2);
        client.read(offset - 1, before);
        client.write(offset, ByteBuffer.wrap(Patterns.pattern(0x33, length)));
        ByteBuffer back = ByteBuffer.allocate(length + 2);
        client.read(offset - 1, back);
        byte[] b = back.array();
        assertEquals(before.get(0), b[0], "byte before the write");
        assertEquals(before.get(length + 1), b[length + 1], "byte after the write");
        assertArrayEquals(Patterns.pattern(0x33, length), Arrays.copyOfRange(b, 1, length + 1));
    }
}
