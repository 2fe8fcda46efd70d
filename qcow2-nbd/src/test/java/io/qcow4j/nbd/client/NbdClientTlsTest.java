package io.qcow4j.nbd.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.nbd.protocol.Nbd;
import io.qcow4j.testing.NbdExport;
import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS (OPT_STARTTLS) against {@code qemu-nbd --tls-creds} with X.509 certificates that
 * certtool makes here: a CA, a server certificate for "localhost" (ECDSA) and a client
 * certificate (RSA, PKCS#1 as certtool writes it), laid out as QEMU's tls-creds-x509
 * directories. qemu-nbd verifies its clients (verify-peer defaults to yes).
 */
class NbdClientTlsTest {
    @TempDir
    static Path certs;

    static Path serverDir;
    static Path clientDir;
    static Path caOnlyDir;

    @BeforeAll
    static void makeCertificates() throws IOException {
        serverDir = Files.createDirectories(certs.resolve("server"));
        clientDir = Files.createDirectories(certs.resolve("client"));
        caOnlyDir = Files.createDirectories(certs.resolve("ca-only"));
        Path ca = certs.resolve("ca-key.pem");
        certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", ca.toString());
        Path caCert = certs.resolve("ca-cert.pem");
        certtool("--generate-self-signed", "--load-privkey", ca.toString(),
                "--template", template("ca.info", "cn = qcow4j test CA", "ca", "cert_signing_key"),
                "--outfile", caCert.toString());
        signed(ca, caCert, serverDir.resolve("server-key.pem"), serverDir.resolve("server-cert.pem"),
                template("server.info", "cn = localhost", "dns_name = localhost", "tls_www_server",
                        "signing_key", "encryption_key"), "--key-type=ecdsa");
        signed(ca, caCert, clientDir.resolve("client-key.pem"), clientDir.resolve("client-cert.pem"),
                template("client.info", "cn = qcow4j test client", "tls_www_client", "signing_key", "encryption_key"),
                "--bits=2048");
        for (Path d : List.of(serverDir, clientDir, caOnlyDir)) {
            Files.copy(caCert, d.resolve("ca-cert.pem"));
        }
    }

    private static void signed(Path caKey, Path caCert, Path key, Path cert, String template, String keyOption) {
        certtool("--generate-privkey", keyOption, "--outfile", key.toString());
        certtool("--generate-certificate", "--load-ca-certificate", caCert.toString(), "--load-ca-privkey",
                caKey.toString(), "--load-privkey", key.toString(), "--template", template, "--outfile", cert.toString());
    }

    private static String template(String name, String... lines) throws IOException {
        List<String> all = new ArrayList<>(List.of(lines));
        all.add("expiration_days = 2");
        return Files.write(certs.resolve(name), all).toString();
    }

    private static void certtool(String... args) {
        List<String> cmd = new ArrayList<>(List.of("certtool"));
        cmd.addAll(List.of(args));
        Qemu.run(cmd.toArray(String[]::new)).assertOk();
    }

    private static String[] tlsArgs(String... more) {
        List<String> args = new ArrayList<>(List.of("-r", "-e", "4", "-f", "qcow2",
                "--object", "tls-creds-x509,id=tls0,dir=" + serverDir + ",endpoint=server", "--tls-creds", "tls0"));
        args.addAll(List.of(more));
        return args.toArray(String[]::new);
    }

    @Test
    void readsOverTlsOnAUnixSocket(@TempDir Path tmp) throws IOException {
        Path img = TestData.image("chain-top.qcow2");
        Path raw = tmp.resolve("copy.raw");
        Qemu.convertToRaw(img, raw);
        try (NbdExport nbd = NbdExport.qemuNbd(img, tlsArgs("-A"))) {
            String uri = "nbds+unix:///?socket=" + nbd.socket() + "&tls-certificates=" + clientDir;
            try (NbdClient client = NbdClient.connect(uri)) {
                assertTrue(client.tls() && client.structuredReplies());
                assertEquals(List.of(Nbd.CONTEXT_BASE_ALLOCATION, Nbd.CONTEXT_ALLOCATION_DEPTH), client.metaContexts());
                ByteBuffer all = ByteBuffer.allocate((int) client.size());
                client.read(0, all);
                assertArrayEquals(Files.readAllBytes(raw), all.array());
                assertEquals(NbdClientContextsTest.nbdinfoMap(uri, Nbd.CONTEXT_BASE_ALLOCATION),
                        NbdClientContextsTest.merged(client, Nbd.CONTEXT_BASE_ALLOCATION));
            }
            // without TLS the server refuses, in qemu's words
            NbdException plain = assertThrows(NbdException.class, () -> NbdClient.connect(nbd.uri()));
            assertEquals(Nbd.REP_ERR_TLS_REQD, plain.error());
            assertTrue(plain.getMessage().startsWith("TLS negotiation required before option 7 (go)\n"), plain.getMessage());
            // without a client certificate qemu-nbd (verify-peer) ends the handshake
            IOException noCert = assertTimeoutPreemptively(Duration.ofSeconds(10), () -> assertThrows(IOException.class,
                    () -> NbdClient.connect("nbds+unix:///?socket=" + nbd.socket() + "&tls-certificates=" + caOnlyDir)));
            assertTrue(noCert.getMessage().contains("TLS") || noCert.getMessage().contains("closed"), noCert.getMessage());
        }
    }

    /** Over TCP the certificate must name the host: "localhost" matches, "127.0.0.1" does not. */
    @Test
    void tcpChecksTheHostName() throws IOException {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        try (NbdExport nbd = NbdExport.qemuNbdTcp(TestData.image("empty.qcow2"), port, tlsArgs("-x", "vda"))) {
            try (NbdClient client = NbdClient.connect("nbds://localhost:" + port + "/vda?tls-certificates=" + clientDir)) {
                assertTrue(client.tls());
                assertEquals(64L << 20, client.size());
            }
            IOException e = assertThrows(IOException.class,
                    () -> NbdClient.connect("nbds://127.0.0.1:" + port + "/vda?tls-certificates=" + clientDir));
            assertTrue(e.getMessage().startsWith("TLS handshake failed"), e.getMessage());
        }
    }
}
