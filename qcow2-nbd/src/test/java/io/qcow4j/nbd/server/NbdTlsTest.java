package io.qcow4j.nbd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import io.qcow4j.testing.Qemu;

/**
 * TLS with X.509 credentials laid out as QEMU's tls-creds-x509 directory, made by GnuTLS's
 * certtool (its default key format, PKCS#1) and converted by openssl (PKCS#8, and a SEC1
 * EC key): nbdinfo and nbdcopy over nbds+unix:// with a client certificate work; a plain
 * client and a client without a certificate get nothing.
 */
@Timeout(120)
class NbdTlsTest {
    @TempDir
    Path dir;

    private Qemu.Result run(String... cmd) {
        return Qemu.run(dir, Duration.ofSeconds(60), cmd).assertOk();
    }

    private void template(String name, String... lines) throws Exception {
        Files.writeString(dir.resolve(name), String.join("\n", lines) + "\n");
    }

    /** CA, server and client certificates in pki/, the server key as certtool writes it. */
    private Path pki() throws Exception {
        Files.createDirectories(dir.resolve("pki"));
        template("ca.info", "cn = qcow4j test CA", "ca", "cert_signing_key", "expiration_days = 30");
        template("server.info", "cn = localhost", "dns_name = localhost", "tls_www_server", "encryption_key",
                "signing_key", "expiration_days = 30");
        template("client.info", "cn = client", "tls_www_client", "encryption_key", "signing_key", "expiration_days = 30");
        Files.writeString(dir.resolve("pki/ca-key.pem"), run("certtool", "--generate-privkey", "--key-type=ecdsa").stdout());
        run("certtool", "--generate-self-signed", "--load-privkey", "pki/ca-key.pem", "--template", "ca.info",
                "--outfile", "pki/ca-cert.pem");
        Files.writeString(dir.resolve("pki/server-key.pem"), run("certtool", "--generate-privkey").stdout());
        sign("server");
        Files.writeString(dir.resolve("pki/client-key.pem"), run("certtool", "--generate-privkey", "--key-type=ecdsa").stdout());
        sign("client");
        return dir.resolve("pki");
    }

    private void sign(String who) {
        run("certtool", "--generate-certificate", "--load-privkey", "pki/" + who + "-key.pem",
                "--load-ca-certificate", "pki/ca-cert.pem", "--load-ca-privkey", "pki/ca-key.pem",
                "--template", who + ".info", "--outfile", "pki/" + who + "-cert.pem");
    }

    private Path image() {
        run("qemu-img", "create", "-q", "-f", "qcow2", "img.qcow2", "16M");
        run("qemu-io", "-c", "write -P 1 0 1M", "-c", "write -P 2 9M 3M", "img.qcow2");
        return dir.resolve("img.qcow2");
    }

    private void serveAndCheck(Path img, Path pki) throws Exception {
        Path socket = dir.resolve("t.sock");
        try (Servers.Ours o = new Servers.Ours(img, "qcow2", false, socket,
                b -> {
                    try {
                        b.tls(TlsCredentials.fromDirectory(pki)).bitmap("b");
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                })) {
            String tls = "nbds+unix:///?socket=" + socket + "&tls-certificates=" + pki;
            assertEquals("         0     1048576    0  data\n"
                    + "   1048576     8388608    3  hole,zero\n"
                    + "   9437184     3145728    0  data\n"
                    + "  12582912     4194304    3  hole,zero\n", Qemu.run("nbdinfo", "--map", tls).assertOk().stdout());
            assertTrue(Qemu.run("nbdinfo", "--json", tls).assertOk().stdout().contains("\"TLS\": true"));
            run("nbdcopy", tls, "copy.raw");
            assertTrue(Qemu.compare(dir.resolve("copy.raw"), img));
            Files.delete(dir.resolve("copy.raw"));

            Qemu.Result plain = Qemu.run("nbdinfo", "--size", o.uri());
            assertNotEquals(0, plain.exitCode());
            assertTrue(plain.stderr().contains("TLS"), plain.describe());

            Path noCert = Files.createDirectories(dir.resolve("nocert"));
            Files.copy(pki.resolve("ca-cert.pem"), noCert.resolve("ca-cert.pem"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            Qemu.Result anonymous = Qemu.run("nbdinfo", "--size",
                    "nbds+unix:///?socket=" + socket + "&tls-certificates=" + noCert);
            assertNotEquals(0, anonymous.exitCode(), anonymous.describe());
            // the server goes on
            assertEquals("16777216", Qemu.run("nbdinfo", "--size", tls).assertOk().stdout().strip());
        }
    }

    @Test
    void certtoolKeysPkcs8AndEc() throws Exception {
        Path img = image();
        run("qemu-img", "bitmap", "--add", "img.qcow2", "b");
        Path pki = pki();
        assertTrue(Files.readString(pki.resolve("server-key.pem")).contains("BEGIN RSA PRIVATE KEY"));
        serveAndCheck(img, pki);

        run("openssl", "pkcs8", "-topk8", "-nocrypt", "-in", "pki/server-key.pem", "-out", "pki/server-key8.pem");
        Files.move(pki.resolve("server-key8.pem"), pki.resolve("server-key.pem"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertTrue(Files.readString(pki.resolve("server-key.pem")).contains("BEGIN PRIVATE KEY"));
        serveAndCheck(img, pki);

        run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "pki/server-key.pem");
        assertTrue(Files.readString(pki.resolve("server-key.pem")).contains("BEGIN EC PRIVATE KEY"));
        sign("server");
        serveAndCheck(img, pki);
    }
}
