package io.qcow4j.nbd.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.nbd.protocol.Nbd;
import io.qcow4j.testing.NbdExport;
import io.qcow4j.testing.Patterns;
import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Writes through the client into a writable {@code qemu-nbd} export of a qcow2 image:
 * large (split and pipelined), unaligned, write-zeroes, trim, flush. Afterwards qemu-io
 * reads the patterns back from the file and {@code qemu-img check} finds it clean.
 */
class NbdClientWriteTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path tmp;

    @Test
    void writesReadBackInQemuAndTheImageChecksClean() throws IOException {
        Path img = tmp.resolve("w.qcow2");
        Qemu.create(img, "64M");
        Qemu.io(img, "write -P 0x11 0 64M").assertOk();
        try (NbdExport nbd = NbdExport.qemuNbd(img, "-f", "qcow2");
             NbdClient client = NbdClient.connect(NbdUri.parse(nbd.uri()), NbdClient.Options.defaults().withMaxInFlight(4))) {
            assertFalse(client.isReadOnly());
            // 5 MiB + 3 bytes from an odd offset: several pieces in flight, ends not on any boundary
            byte[] big = Patterns.pattern(0x5a, 5 * MIB + 3);
            client.write(MIB + 1, ByteBuffer.wrap(big));
            client.write(10 * MIB, ByteBuffer.wrap(Patterns.pattern(0x6b, 512)));
            client.writeZeroes(20 * MIB + 100, 3 * MIB);
            client.trim(32 * MIB, 8 * MIB);
            client.writeZeroes(48 * MIB, 16 * MIB); // to the end of the export
            client.flush();

            ByteBuffer back = ByteBuffer.allocate(big.length);
            client.read(MIB + 1, back);
            assertArrayEquals(big, back.array());
            // what was zeroed reads as zeros, and block status says so after the writes
            ByteBuffer z = ByteBuffer.allocate(3 * MIB);
            client.read(20 * MIB + 100, z);
            assertTrue(Patterns.matches(z.array(), 0));
            assertTrue(client.blockStatus(48 * MIB, 16 * MIB).zero());
        }
        Qemu.io(img,
                "read -P 0x11 0 1048577",
                "read -P 0x5a 1048577 5242883",
                "read -P 0x11 6291460 4194300",
                "read -P 0x6b 10485760 512",
                "read -P 0x11 10486272 10485348",
                "read -P 0 20971620 3145728",
                "read -P 0x11 24117348 9437084",
                "read -P 0x11 41943040 8388608",
                "read -P 0 50331648 16777216").assertOk();
        Qemu.check(img).assertOk();
    }

    @Test
    void aReadOnlyExportRefusesWrites() throws IOException {
        Path img = tmp.resolve("r.qcow2");
        Qemu.create(img, "1M");
        try (NbdExport nbd = NbdExport.qemuNbd(img, "-r", "-f", "qcow2");
             NbdClient client = NbdClient.connect(nbd.uri())) {
            assertTrue(client.isReadOnly());
            NbdException e = assertThrows(NbdException.class, () -> client.write(0, ByteBuffer.allocate(512)));
            assertEquals(Nbd.EPERM, e.error());
            assertThrows(NbdException.class, () -> client.writeZeroes(0, 512));
            // the connection goes on
            ByteBuffer b = ByteBuffer.allocate(4096);
            client.read(0, b);
            assertTrue(Patterns.matches(b.array(), 0));
        }
    }
}
