package io.qcow4j.nbd.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.nbd.protocol.Nbd;
import io.qcow4j.testing.NbdExport;
import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What goes wrong with a real qemu-nbd: nothing listening, no such export, the server killed mid-request. */
class NbdClientErrorsTest {
    private static final Duration LIMIT = Duration.ofSeconds(20);

    @Test
    void nothingListening(@TempDir Path tmp) {
        IOException e = assertThrows(IOException.class,
                () -> NbdClient.connect("nbd+unix:///?socket=" + tmp.resolve("none.sock")));
        assertEquals("Failed to connect to '" + tmp.resolve("none.sock") + "': No such file or directory", e.getMessage());
    }

    @Test
    void noSuchExport() {
        try (NbdExport nbd = NbdExport.qemuNbd(TestData.image("empty.qcow2"), "-r", "-f", "qcow2", "-x", "vda")) {
            NbdException e = assertThrows(NbdException.class, () -> NbdClient.connect(nbd.uri("vdb")));
            assertEquals(Nbd.REP_ERR_UNKNOWN, e.error());
            assertEquals("Requested export not available\nserver reported: export 'vdb' not present", e.getMessage());
        }
    }

    /**
     * qemu-nbd stopped (SIGSTOP) while the client sends a large read, then killed: the read
     * fails with an IOException at once, and so does every later call.
     */
    @Test
    void serverKilledMidRequest() throws Exception {
        try (NbdExport nbd = NbdExport.qemuNbd(TestData.image("chain-top.qcow2"), "-r", "-f", "qcow2");
             NbdClient client = NbdClient.connect(nbd.uri())) {
            Qemu.run("kill", "-STOP", Long.toString(nbd.pid())).assertOk();
            CompletableFuture<Void> read = CompletableFuture.runAsync(() -> {
                try {
                    client.read(0, ByteBuffer.allocate((int) client.size()));
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            Thread.sleep(200); // the requests are out, qemu-nbd cannot answer
            nbd.kill();
            ExecutionException e = assertTimeoutPreemptively(LIMIT,
                    () -> assertThrows(ExecutionException.class, () -> read.get(LIMIT.toSeconds(), TimeUnit.SECONDS)));
            IOException cause = (IOException) e.getCause().getCause();
            assertTrue(cause.getMessage().contains("closed the connection") || cause.getMessage().contains("reset"),
                    cause.getMessage());
            IOException later = assertThrows(IOException.class, () -> client.blockStatus(0, 512));
            assertTrue(later.getMessage().startsWith("the NBD connection is unusable after an earlier error"),
                    later.getMessage());
        }
    }
}
