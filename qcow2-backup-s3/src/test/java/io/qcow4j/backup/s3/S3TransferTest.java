package io.qcow4j.backup.s3;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import io.qcow4j.backup.BackupOptions;
import io.qcow4j.backup.BackupResult;
import io.qcow4j.backup.BackupSet;
import io.qcow4j.backup.Level;
import io.qcow4j.backup.Manifest;
import io.qcow4j.backup.Progress;
import io.qcow4j.backup.SetStore;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.core.interceptor.Context;
import software.amazon.awssdk.core.interceptor.ExecutionAttributes;
import software.amazon.awssdk.core.interceptor.ExecutionInterceptor;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.GetObjectRequest;

/**
 * How files travel, against S3Proxy on 127.0.0.1 with the production client
 * ({@link S3Clients#builder}): through a relay that drops connections mid-part
 * ({@link DroppingProxy}), a dropped part is sent again and the backup completes; a part that keeps
 * failing fails the backup, whose upload is aborted (no object, no unfinished upload) and
 * whose changes the next backup takes; restore and verify read objects with ranged GETs, several
 * at once (an SDK interceptor watches the requests).
 */
class S3TransferTest {
    static S3Server server;
    static S3Client s3;

    @TempDir
    Path tmp;

    @BeforeAll
    static void startServer() throws Exception {
        server = S3Server.shared();
        s3 = server.client();
    }

    @AfterAll
    static void closeClient() {
        s3.close();
    }

    private static SetStore store(S3Client client, String prefix) {
        return new S3Store(client, new S3Location(S3Sets.BUCKET, prefix));
    }

    @Test
    void droppedPartsAreSentAgainAndAFailingOneAbortsTheUpload() throws IOException {
        Path img = tmp.resolve("disk.qcow2");
        try (DroppingProxy net = new DroppingProxy(server.endpoint);
                S3Client client = S3Clients.builder(o -> { }).endpointOverride(net.endpoint()).build()) {
            SetStore set = store(client, "flaky");
            Qemu.create(img, "32M");
            // 20 MiB: parts 1 (held to the end), 2 and 3 of 8, 8 and 4 MiB; each dropped once
            S3Sets.io(img, "write -P 0x11 0 20M");
            net.drop((part, attempt) -> attempt == 1);
            BackupResult full = S3Sets.backup(img, set, BackupOptions.defaults());
            assertEquals(Map.of(1, 2, 2, 2, 3, 2), counts(net.attempts), "each part dropped once, then sent again");
            assertEquals(3, net.dropped.get());
            S3Sets.assertRestores(set, full.checkpoint(), S3Sets.snapshot(img, tmp.resolve("p0.raw")),
                    tmp.resolve("r0.qcow2"), false);

            // part 3 keeps failing: the backup fails, naming it, after the client's attempts
            S3Sets.io(img, "write -P 0x21 2M 18M");
            net.drop((part, attempt) -> part == 3);
            IOException e = assertThrows(IOException.class, () -> S3Sets.backup(img, set, BackupOptions.defaults()));
            assertTrue(e.getMessage().contains("s3://qcow4j-test/flaky/disk.002.inc.data part 3"), e.getMessage());
            assertEquals(S3Clients.ATTEMPTS, net.attempts.get(3).get());
            assertEquals(List.of(), S3Sets.unfinishedUploads(s3, "flaky"), "the upload was aborted");
            assertEquals(List.of("disk.001.full.data", "manifest.json"), S3Sets.objects(s3, "flaky"));
            Manifest m = BackupSet.manifest(set);
            assertEquals(1, m.backups.size());
            assertNull(m.pending, "the failed backup was undone at once");
        }
        // the next backup takes every change since the full
        SetStore set = store(s3, "flaky");
        S3Sets.io(img, "write -P 0x22 24M 64k");
        BackupResult inc = S3Sets.backup(img, set, BackupOptions.defaults());
        assertEquals(Level.INC, inc.level());
        assertEquals(18L * 1024 * 1024 + 65536, inc.dataBytes());
        S3Sets.assertRestores(set, inc.checkpoint(), S3Sets.snapshot(img, tmp.resolve("p1.raw")), tmp.resolve("r1.raw"),
                true);
    }

    private static Map<Integer, Integer> counts(Map<Integer, AtomicInteger> attempts) {
        Map<Integer, Integer> out = new java.util.TreeMap<>();
        attempts.forEach((k, v) -> out.put(k, v.get()));
        return out;
    }

    /**
     * Counts the ranged GETs of backup files in flight; each waits (at most 5 s) until another
     * one is, so a reader that fetched one range at a time would show at most one.
     */
    static final class RangedGets implements ExecutionInterceptor {
        final AtomicInteger inFlight = new AtomicInteger();
        final AtomicInteger most = new AtomicInteger();
        final AtomicInteger ranged = new AtomicInteger();
        final AtomicInteger whole = new AtomicInteger();
        volatile int maxAttempts;

        @Override
        public void beforeTransmission(Context.BeforeTransmission ctx, ExecutionAttributes attrs) {
            // the SDK names the attempt and the most it makes: "attempt=1; max=5"
            String req = ctx.httpRequest().firstMatchingHeader("amz-sdk-request").orElse("");
            maxAttempts = Integer.parseInt(req.replaceAll(".*max=(\\d+).*", "$1"));
            if (!(ctx.request() instanceof GetObjectRequest g) || !g.key().endsWith(".data")) {
                return;
            }
            if (g.range() == null) {
                whole.incrementAndGet();
                return;
            }
            ranged.incrementAndGet();
            int n = inFlight.incrementAndGet();
            most.accumulateAndGet(n, Math::max);
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (most.get() < 2 && System.nanoTime() < end) {
                try {
                    Thread.sleep(1);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }

        @Override
        public void afterTransmission(Context.AfterTransmission ctx, ExecutionAttributes attrs) {
            if (ctx.request() instanceof GetObjectRequest g && g.range() != null && g.key().endsWith(".data")) {
                inFlight.decrementAndGet();
            }
        }
    }

    @Test
    void restoreAndVerifyReadRangesInParallel() throws IOException {
        Path img = tmp.resolve("disk.qcow2");
        Qemu.create(img, "32M");
        S3Sets.io(img, "write -P 0x31 0 17M", "write -P 0x32 20M 64k");
        BackupResult full = S3Sets.backup(img, store(s3, "ranged"), BackupOptions.defaults());
        Path raw = S3Sets.snapshot(img, tmp.resolve("p0.raw"));
        for (boolean verify : new boolean[] {false, true}) {
            RangedGets gets = new RangedGets();
            try (S3Client watched = S3Clients.builder(o -> o.addExecutionInterceptor(gets)).build()) {
                SetStore set = store(watched, "ranged");
                if (verify) {
                    assertTrue(BackupSet.verify(set, Progress.none()).good());
                } else {
                    S3Sets.assertRestores(set, full.checkpoint(), raw, tmp.resolve("r.raw"), true);
                }
            }
            String what = verify ? "verify" : "restore";
            assertEquals(0, gets.whole.get(), what + ": no backup file is fetched whole");
            assertEquals(S3Clients.ATTEMPTS, gets.maxAttempts, what + ": the client added to keeps its retries");
            // 17 MiB and a bit: five ranges of 4 MiB at least
            assertTrue(gets.ranged.get() >= 5, what + ": " + gets.ranged + " ranged GETs");
            assertTrue(gets.most.get() >= 2, what + ": at most " + gets.most + " ranged GET in flight at once");
        }
    }
}
