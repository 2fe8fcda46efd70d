package io.qcow4j.nbd.client;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.Collection;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * An {@link SSLContext} from a directory laid out as QEMU's {@code tls-creds-x509} object
 * with {@code endpoint=client} wants it: {@code ca-cert.pem} (the CAs to trust), and
 * optionally {@code client-cert.pem} with {@code client-key.pem} (for a server that
 * verifies its clients). Keys may be PKCS#8 ("BEGIN PRIVATE KEY", unencrypted) or PKCS#1
 * RSA ("BEGIN RSA PRIVATE KEY", what certtool writes).
 */
final class TlsCredentials {
    private static final Pattern PEM = Pattern.compile(
            "-----BEGIN ([A-Z ]+)-----([A-Za-z0-9+/=\\s]+)-----END \\1-----");
    private static final char[] NO_PASSWORD = new char[0];

    private TlsCredentials() {
    }

    static SSLContext fromDirectory(Path dir) throws IOException {
        Path ca = dir.resolve("ca-cert.pem");
        if (!Files.isRegularFile(ca)) {
            throw new NoSuchFileException(ca.toString(), null, "TLS credentials: no CA certificate (ca-cert.pem) in " + dir);
        }
        try {
            KeyStore trust = KeyStore.getInstance("PKCS12");
            trust.load(null, null);
            int i = 0;
            for (Certificate c : certificates(ca)) {
                trust.setCertificateEntry("ca" + i++, c);
            }
            if (i == 0) {
                throw new IOException("TLS credentials: no certificate in " + ca);
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(trust);
            KeyManagerFactory kmf = null;
            Path cert = dir.resolve("client-cert.pem");
            Path key = dir.resolve("client-key.pem");
            if (Files.isRegularFile(cert) && Files.isRegularFile(key)) {
                KeyStore keys = KeyStore.getInstance("PKCS12");
                keys.load(null, null);
                keys.setKeyEntry("client", privateKey(key), NO_PASSWORD,
                        certificates(cert).toArray(Certificate[]::new));
                kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
                kmf.init(keys, NO_PASSWORD);
            }
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), null);
            return ctx;
        } catch (GeneralSecurityException e) {
            throw new IOException("TLS credentials in " + dir + ": " + e.getMessage(), e);
        }
    }

    private static Collection<? extends Certificate> certificates(Path pem) throws IOException, GeneralSecurityException {
        try (InputStream in = Files.newInputStream(pem)) {
            return CertificateFactory.getInstance("X.509").generateCertificates(in);
        }
    }

    private static PrivateKey privateKey(Path pem) throws IOException, GeneralSecurityException {
        Matcher m = PEM.matcher(Files.readString(pem, StandardCharsets.US_ASCII));
        if (!m.find()) {
            throw new IOException("TLS credentials: no PEM key in " + pem);
        }
        byte[] der = Base64.getMimeDecoder().decode(m.group(2));
        byte[] pkcs8 = switch (m.group(1)) {
            case "PRIVATE KEY" -> der;
            case "RSA PRIVATE KEY" -> rsaPkcs1ToPkcs8(der);
            default -> throw new IOException("TLS credentials: " + pem + " holds a \"" + m.group(1)
                    + "\"; use an unencrypted PKCS#8 or RSA key");
        };
        String algorithm = m.group(1).equals("RSA PRIVATE KEY") ? "RSA" : keyAlgorithm(pkcs8);
        return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
    }

    /** The key algorithm of a PKCS#8 structure, from the OID of its algorithm identifier. */
    private static String keyAlgorithm(byte[] pkcs8) throws IOException {
        // SEQUENCE { INTEGER version, SEQUENCE { OID algorithm, ... }, ... }
        int[] pos = {0};
        enter(pkcs8, pos, 0x30);
        skip(pkcs8, pos, 0x02);
        enter(pkcs8, pos, 0x30);
        int oidLength = enter(pkcs8, pos, 0x06);
        if (pos[0] + oidLength > pkcs8.length) {
            throw new IOException("TLS credentials: malformed PKCS#8 key");
        }
        String oid = java.util.HexFormat.of().formatHex(pkcs8, pos[0], pos[0] + oidLength);
        return switch (oid) {
            case "2a864886f70d010101" -> "RSA";
            case "2a8648ce3d0201" -> "EC";
            case "2b6570" -> "Ed25519";
            case "2b6571" -> "Ed448";
            default -> throw new IOException("TLS credentials: unsupported key algorithm (OID " + oid + ")");
        };
    }

    /** Reads a DER header of the given tag at pos; returns the content length, pos at the content. */
    private static int enter(byte[] der, int[] pos, int tag) throws IOException {
        if (pos[0] + 2 > der.length || (der[pos[0]] & 0xff) != tag) {
            throw new IOException("TLS credentials: malformed PKCS#8 key");
        }
        int len = der[pos[0] + 1] & 0xff;
        pos[0] += 2;
        if (len >= 0x80) {
            int bytes = len & 0x7f;
            if (bytes == 0 || bytes > 3 || pos[0] + bytes > der.length) {
                throw new IOException("TLS credentials: malformed PKCS#8 key");
            }
            len = 0;
            for (int i = 0; i < bytes; i++) {
                len = (len << 8) | (der[pos[0]++] & 0xff);
            }
        }
        return len;
    }

    private static void skip(byte[] der, int[] pos, int tag) throws IOException {
        pos[0] += enter(der, pos, tag);
    }

    /** PrivateKeyInfo { version 0, AlgorithmIdentifier { rsaEncryption, NULL }, OCTET STRING pkcs1 }. */
    private static byte[] rsaPkcs1ToPkcs8(byte[] pkcs1) {
        byte[] algorithm = {0x30, 0x0d, 0x06, 0x09, 0x2a, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
        byte[] version = {0x02, 0x01, 0x00};
        byte[] octets = der(0x04, pkcs1);
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.writeBytes(version);
        body.writeBytes(algorithm);
        body.writeBytes(octets);
        return der(0x30, body.toByteArray());
    }

    private static byte[] der(int tag, byte[] content) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(tag);
        int n = content.length;
        if (n < 0x80) {
            out.write(n);
        } else {
            int bytes = n > 0xffffff ? 4 : n > 0xffff ? 3 : n > 0xff ? 2 : 1;
            out.write(0x80 | bytes);
            for (int i = bytes - 1; i >= 0; i--) {
                out.write(n >>> (8 * i));
            }
        }
        out.writeBytes(content);
        return out.toByteArray();
    }
}
