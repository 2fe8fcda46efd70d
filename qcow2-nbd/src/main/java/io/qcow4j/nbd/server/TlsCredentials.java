package io.qcow4j.nbd.server;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.List;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManagerFactory;

/**
 * A server's X.509 credentials laid out as QEMU's {@code tls-creds-x509} directory:
 * {@code ca-cert.pem} (the CA that signs the clients' certificates), {@code server-cert.pem}
 * and {@code server-key.pem}. As QEMU's server by default ({@code verify-peer=on}), clients
 * must present a certificate that CA signed.
 */
public final class TlsCredentials {
    private static final String[] PROTOCOLS = {"TLSv1.3", "TLSv1.2"};
    private final SSLContext context;
    private final boolean verifyPeer;

    private TlsCredentials(SSLContext context, boolean verifyPeer) {
        this.context = context;
        this.verifyPeer = verifyPeer;
    }

    /** Loads {@code dir}; clients must present certificates signed by its CA. */
    public static TlsCredentials fromDirectory(Path dir) throws IOException, GeneralSecurityException {
        return fromDirectory(dir, true);
    }

    /** Loads {@code dir}; {@code verifyPeer} false accepts clients without a certificate (QEMU's verify-peer=off). */
    public static TlsCredentials fromDirectory(Path dir, boolean verifyPeer) throws IOException, GeneralSecurityException {
        List<X509Certificate> ca = Pem.certificates(need(dir, "ca-cert.pem"));
        List<X509Certificate> chain = Pem.certificates(need(dir, "server-cert.pem"));
        PrivateKey key = Pem.privateKey(need(dir, "server-key.pem"));
        char[] none = new char[0];
        KeyStore keys = KeyStore.getInstance("PKCS12");
        keys.load(null, none);
        keys.setKeyEntry("server", key, none, chain.toArray(new X509Certificate[0]));
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(keys, none);
        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, none);
        for (int i = 0; i < ca.size(); i++) {
            trust.setCertificateEntry("ca" + i, ca.get(i));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        return new TlsCredentials(ctx, verifyPeer);
    }

    private static Path need(Path dir, String name) throws IOException {
        Path p = dir.resolve(name);
        if (!Files.isRegularFile(p)) {
            throw new NoSuchFileException(p.toString(), null, "Unable to access credentials " + p + ": No such file or directory");
        }
        return p;
    }

    /** Upgrades a plain connection after STARTTLS was acknowledged. */
    TlsTransport handshake(PlainTransport plain) throws IOException {
        SSLEngine engine = context.createSSLEngine();
        engine.setUseClientMode(false);
        engine.setEnabledProtocols(PROTOCOLS);
        if (verifyPeer) {
            engine.setNeedClientAuth(true);
        }
        TlsTransport t = new TlsTransport(plain, engine);
        t.handshake();
        return t;
    }
}
