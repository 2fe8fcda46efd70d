package io.qcow4j.nbd.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.nbd.client.NbdClient;
import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.Seeds;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Several NBD clients at once on one writable qcow2 export: each of {@link #CLIENTS}
 * connections writes, zeroes, trims and flushes an area of its own, reads its area back
 * against its own oracle, and reads ranges overlapping the other clients' areas, where every
 * 512-byte sector must be zeros or a whole sector some client wrote for exactly that offset
 * (a sector names its writer, offset and version and carries a checksum: a reply crossed
 * between connections, or a torn sector, shows). Then qemu-img check is clean and the image
 * equals the oracles joined.
 */
@Timeout(60)
class NbdStressTest {
    private static final int CLIENTS = 4;
    private static final int AREA = 2 << 20;
    private static final int SECTOR = 512;
    private static final long SIZE = (long) CLIENTS * AREA;
    private static final int OPS = 1000;

    @TempDir
    Path dir;

    @Test
    void clientsWriteTheirAreasAndReadEachOthers() throws Exception {
        long seed = Seeds.of(20261206L);
        Path img = dir.resolve("stress.qcow2");
        Qemu.run(dir, Duration.ofSeconds(60), "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096",
                img.toString(), Long.toString(SIZE)).assertOk();
        byte[][] oracles = new byte[CLIENTS][AREA];
        Path socket = dir.resolve("s.sock");
        try (Servers.Ours o = new Servers.Ours(img, "qcow2", true, socket, b -> b.shared(0))) {
            ExecutorService pool = Executors.newFixedThreadPool(CLIENTS);
            List<Future<Integer>> done = new ArrayList<>();
            for (int c = 0; c < CLIENTS; c++) {
                int client = c;
                done.add(pool.submit(() -> {
                    try (NbdClient nbd = NbdClient.connect(o.uri())) {
                        return run(nbd, client, oracles[client], new Random(seed * 31 + client), seed);
                    }
                }));
            }
            pool.shutdown();
            int foreignSectors = 0;
            for (Future<Integer> f : done) {
                foreignSectors += f.get(50, TimeUnit.SECONDS);
            }
            // the clients did look at each other's writes, not only at zeros
            assertTrue(foreignSectors > 0, "seed " + seed + ": no client read another's data");
        }
        Qemu.Result check = Qemu.check(img);
        assertEquals(0, check.exitCode(), "seed " + seed + ": qemu-img check\n" + check.describe());
        Path raw = dir.resolve("oracle.raw");
        byte[] all = new byte[(int) SIZE];
        for (int c = 0; c < CLIENTS; c++) {
            System.arraycopy(oracles[c], 0, all, c * AREA, AREA);
        }
        Files.write(raw, all);
        assertTrue(Qemu.compare(img, raw), "seed " + seed + ": the image differs from the oracles");
    }

    /** One client's run; returns how many written sectors of other clients it read. */
    private static int run(NbdClient nbd, int client, byte[] oracle, Random r, long seed) throws Exception {
        long base = (long) client * AREA;
        int version = 0;
        int foreign = 0;
        for (int i = 0; i < OPS; i++) {
            int kind = r.nextInt(20);
            int sectors = 1 + r.nextInt(16);
            int off = r.nextInt(AREA / SECTOR - sectors) * SECTOR;
            int len = sectors * SECTOR;
            String at = "seed " + seed + " client " + client + " op " + i;
            if (kind == 0) {
                nbd.flush();
            } else if (kind < 3) {
                nbd.trim(base + off, len);
                // a trim may leave the data or zeros: the oracle holds zeros only after a zero write
                nbd.writeZeroes(base + off, len);
                Arrays.fill(oracle, off, off + len, (byte) 0);
            } else if (kind < 5) {
                nbd.writeZeroes(base + off, len);
                Arrays.fill(oracle, off, off + len, (byte) 0);
            } else if (kind < 12) {
                byte[] data = new byte[len];
                version++;
                for (int s = 0; s < sectors; s++) {
                    fillSector(data, s * SECTOR, client, base + off + (long) s * SECTOR, version);
                }
                nbd.write(base + off, ByteBuffer.wrap(data));
                System.arraycopy(data, 0, oracle, off, len);
            } else if (kind < 16) {
                ByteBuffer got = ByteBuffer.allocate(len);
                nbd.read(base + off, got);
                assertArrayEquals(Arrays.copyOfRange(oracle, off, off + len), got.array(), at + ": own read at " + (base + off));
            } else {
                // a range over the border of this area and the next (or anywhere in the disk)
                long start = kind == 16 ? r.nextLong(SIZE / SECTOR - 64) * SECTOR
                        : Math.floorMod(base + AREA - 32L * SECTOR, SIZE - 64L * SECTOR);
                byte[] got = new byte[64 * SECTOR];
                nbd.read(start, ByteBuffer.wrap(got));
                for (int s = 0; s < 64; s++) {
                    long sector = start + (long) s * SECTOR;
                    int owner = (int) (sector / AREA);
                    if (owner == client) {
                        int o = (int) (sector - base);
                        assertArrayEquals(Arrays.copyOfRange(oracle, o, o + SECTOR), Arrays.copyOfRange(got, s * SECTOR, (s + 1) * SECTOR),
                                at + ": own sector " + sector + " in a wide read");
                    } else if (!zero(got, s * SECTOR)) {
                        assertTrue(validSector(got, s * SECTOR, owner, sector), at + ": sector " + sector + " is neither zeros nor a whole sector client "
                                + owner + " wrote there");
                        foreign++;
                    }
                }
            }
        }
        nbd.flush();
        return foreign;
    }

    /** A sector that names its writer, offset and version, then bytes derived from them, then a checksum. */
    private static void fillSector(byte[] b, int at, int client, long offset, int version) {
        ByteBuffer s = ByteBuffer.wrap(b, at, SECTOR);
        s.putInt(client).putLong(offset).putInt(version);
        Random fill = new Random(offset * 1_000_003L + version * 17L + client);
        while (s.position() < at + SECTOR - 8) {
            s.put((byte) fill.nextInt(256));
        }
        s.putLong(checksum(b, at));
    }

    private static boolean validSector(byte[] b, int at, int owner, long offset) {
        ByteBuffer s = ByteBuffer.wrap(b, at, SECTOR);
        return s.getInt() == owner && s.getLong() == offset && s.getLong(at + SECTOR - 8) == checksum(b, at);
    }

    private static long checksum(byte[] b, int at) {
        long h = 1125899906842597L;
        for (int i = at; i < at + SECTOR - 8; i++) {
            h = 31 * h + b[i];
        }
        return h;
    }

    private static boolean zero(byte[] b, int at) {
        for (int i = at; i < at + SECTOR; i++) {
            if (b[i] != 0) {
                return false;
            }
        }
        return true;
    }
}
