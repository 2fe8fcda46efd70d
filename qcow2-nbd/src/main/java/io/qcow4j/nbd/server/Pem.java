package io.qcow4j.nbd.server;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * PEM files as GnuTLS's certtool and OpenSSL write them: certificates, and an unencrypted
 * private key in PKCS#8 ({@code PRIVATE KEY}), PKCS#1 ({@code RSA PRIVATE KEY}) or SEC1
 * ({@code EC PRIVATE KEY}). The JDK reads only PKCS#8, so the other two are wrapped into
 * a PKCS#8 structure first (a few DER bytes in front).
 */
final class Pem {
    private static final Pattern BLOCK = Pattern.compile(
            "-----BEGIN ([A-Z0-9 ]+)-----\\s*([A-Za-z0-9+/=\\s]*?)-----END \\1-----");
    private static final byte[] RSA_OID = {0x06, 0x09, 0x2a, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xf7, 0x0d, 0x01, 0x01, 0x01};
    private static final byte[] EC_OID = {0x06, 0x07, 0x2a, (byte) 0x86, 0x48, (byte) 0xce, 0x3d, 0x02, 0x01};

    private Pem() {
    }

    static List<X509Certificate> certificates(Path file) throws IOException, GeneralSecurityException {
        List<X509Certificate> out = new ArrayList<>();
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        for (Block b : blocks(file)) {
            if (b.type.equals("CERTIFICATE") || b.type.equals("X509 CERTIFICATE") || b.type.equals("TRUSTED CERTIFICATE")) {
                out.add((X509Certificate) cf.generateCertificate(new ByteArrayInputStream(b.der)));
            }
        }
        if (out.isEmpty()) {
            throw new GeneralSecurityException("no certificate in " + file);
        }
        return out;
    }

    static PrivateKey privateKey(Path file) throws IOException, GeneralSecurityException {
        for (Block b : blocks(file)) {
            switch (b.type) {
                case "PRIVATE KEY" -> {
                    return pkcs8(b.der);
                }
                case "RSA PRIVATE KEY" -> {
                    return pkcs8(wrap(RSA_OID, new byte[] {0x05, 0x00}, b.der));
                }
                case "EC PRIVATE KEY" -> {
                    return pkcs8(wrap(EC_OID, curve(b.der), b.der));
                }
                case "ENCRYPTED PRIVATE KEY" -> throw new GeneralSecurityException(file + ": encrypted private keys are not supported");
                default -> {
                    // parameters, certificates: look further
                }
            }
        }
        throw new GeneralSecurityException("no private key in " + file);
    }

    private static PrivateKey pkcs8(byte[] der) throws GeneralSecurityException {
        GeneralSecurityException last = null;
        for (String alg : new String[] {"RSA", "EC", "Ed25519", "Ed448", "RSASSA-PSS"}) {
            try {
                return KeyFactory.getInstance(alg).generatePrivate(new PKCS8EncodedKeySpec(der));
            } catch (GeneralSecurityException e) {
                last = e;
            }
        }
        throw new GeneralSecurityException("unsupported private key", last);
    }

    /** PrivateKeyInfo: version 0, the algorithm (its OID and parameters), the key as an octet string. */
    private static byte[] wrap(byte[] oid, byte[] params, byte[] key) {
        byte[] alg = der(0x30, concat(oid, params));
        return der(0x30, concat(new byte[] {0x02, 0x01, 0x00}, alg, der(0x04, key)));
    }

    /** The named curve of a SEC1 key: the OID inside its [0] parameters. */
    private static byte[] curve(byte[] sec1) throws GeneralSecurityException {
        int[] seq = header(sec1, 0);
        int p = seq[1];
        int end = seq[1] + seq[2];
        while (p < end) {
            int[] h = header(sec1, p);
            if ((sec1[p] & 0xff) == 0xa0) {
                int[] oid = header(sec1, h[1]);
                byte[] out = new byte[oid[1] + oid[2] - h[1]];
                System.arraycopy(sec1, h[1], out, 0, out.length);
                return out;
            }
            p = h[1] + h[2];
        }
        throw new GeneralSecurityException("EC private key without a named curve");
    }

    /** {tag, start of contents, length of contents} of the DER element at {@code p}. */
    private static int[] header(byte[] d, int p) throws GeneralSecurityException {
        if (p + 2 > d.length) {
            throw new GeneralSecurityException("truncated DER");
        }
        int tag = d[p] & 0xff;
        int len = d[p + 1] & 0xff;
        int q = p + 2;
        if (len >= 0x80) {
            int n = len & 0x7f;
            if (n > 3 || q + n > d.length) {
                throw new GeneralSecurityException("bad DER length");
            }
            len = 0;
            for (int i = 0; i < n; i++) {
                len = len << 8 | d[q++] & 0xff;
            }
        }
        if (q + len > d.length) {
            throw new GeneralSecurityException("truncated DER");
        }
        return new int[] {tag, q, len};
    }

    private static byte[] der(int tag, byte[] content) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(tag);
        int n = content.length;
        if (n < 0x80) {
            out.write(n);
        } else if (n < 0x100) {
            out.write(0x81);
            out.write(n);
        } else if (n < 0x10000) {
            out.write(0x82);
            out.write(n >> 8);
            out.write(n);
        } else {
            out.write(0x83);
            out.write(n >> 16);
            out.write(n >> 8);
            out.write(n);
        }
        out.writeBytes(content);
        return out.toByteArray();
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    private record Block(String type, byte[] der) {
    }

    private static List<Block> blocks(Path file) throws IOException, GeneralSecurityException {
        String text = Files.readString(file, StandardCharsets.US_ASCII);
        List<Block> out = new ArrayList<>();
        Matcher m = BLOCK.matcher(text);
        while (m.find()) {
            try {
                out.add(new Block(m.group(1), Base64.getMimeDecoder().decode(m.group(2))));
            } catch (IllegalArgumentException e) {
                throw new GeneralSecurityException(file + ": bad PEM data", e);
            }
        }
        return out;
    }
}
