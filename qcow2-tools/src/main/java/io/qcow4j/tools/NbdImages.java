package io.qcow4j.tools;

import io.qcow4j.nbd.client.NbdClient;
import io.qcow4j.nbd.client.NbdUri;
import io.qcow4j.nbd.protocol.Nbd;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * NBD exports named as qemu-img names them ({@code nbd+unix:///EXPORT?socket=PATH},
 * {@code nbd://HOST:PORT/EXPORT}, and libnbd's {@code nbds://...?tls-certificates=DIR}),
 * opened as raw disks, with qemu-img's error texts.
 */
final class NbdImages {
    private static final byte[] QCOW2_MAGIC = {'Q', 'F', 'I', (byte) 0xfb};

    private NbdImages() {
    }

    /** True when {@code name} is an NBD URI (its protocol prefix starts with "nbd"), not a file. */
    static boolean isNbd(String name) {
        return NbdUri.isNbd(name);
    }

    /** The name qemu-img prints for the export {@code name} designates (its canonical URI). */
    static String displayName(String name) {
        try {
            return NbdUri.parse(name).toString();
        } catch (IllegalArgumentException e) {
            return name;
        }
    }

    /**
     * Connects to the export with the given meta contexts (none: base:allocation and
     * qemu:allocation-depth). Only raw is served: a qcow2 image inside the export (or
     * -f qcow2) is refused. Failures are "Could not open 'NAME': why".
     */
    static NbdClient open(String name, String format, boolean writable, String... contexts) {
        String prefix = "Could not open '" + name + "': ";
        Images.checkFormat(format, prefix);
        NbdUri uri;
        try {
            uri = NbdUri.parse(name);
        } catch (IllegalArgumentException e) {
            throw new CliException(prefix + e.getMessage());
        }
        uri = resolved(uri);
        NbdClient.Options options = NbdClient.Options.defaults();
        if (contexts.length > 0) {
            options = options.withMetaContexts(contexts);
        }
        NbdClient client;
        try {
            client = NbdClient.connect(uri, options);
        } catch (IOException | RuntimeException e) {
            throw new CliException(prefix + Images.reason(e), 1, e);
        }
        try {
            if (writable && client.isReadOnly()) {
                throw new CliException(prefix + "Could not open image: Permission denied");
            }
            if (Images.QCOW2.equals(format) || (format == null && holdsQcow2(client))) {
                throw new CliException(prefix + "a qcow2 image inside an NBD export is not supported"
                        + " (qcow4j reads NBD exports as raw disks: export the image with qemu-nbd -f qcow2)");
            }
            return client;
        } catch (IOException e) {
            Images.closeQuietly(client);
            throw new CliException(prefix + Images.reason(e), 1, e);
        } catch (RuntimeException e) {
            Images.closeQuietly(client);
            throw e;
        }
    }

    /** qemu-img probes the export's format; qcow4j reads only raw exports, so it looks for qcow2's magic. */
    private static boolean holdsQcow2(NbdClient client) throws IOException {
        if (client.size() < QCOW2_MAGIC.length) {
            return false;
        }
        ByteBuffer head = ByteBuffer.allocate(QCOW2_MAGIC.length);
        client.read(0, head);
        return Arrays.equals(head.array(), QCOW2_MAGIC);
    }

    /** Relative socket and certificate paths taken from the command's working directory. */
    private static NbdUri resolved(NbdUri uri) {
        NbdUri u = uri;
        if (u.socket() != null && !u.socket().isAbsolute()) {
            u = u.withSocket(Cwd.path(u.socket().toString()));
        }
        if (u.tlsCertificates() != null && !u.tlsCertificates().isAbsolute()) {
            u = u.withTls(Cwd.path(u.tlsCertificates().toString()));
        }
        return u;
    }

    /** The dirty-bitmap context of bitmap {@code name}, as qemu-nbd -B NAME exports it. */
    static String bitmapContext(String name) {
        return Nbd.CONTEXT_DIRTY_BITMAP_PREFIX + name;
    }
}
