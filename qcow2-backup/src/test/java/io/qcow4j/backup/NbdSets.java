package io.qcow4j.backup;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.nbd.server.NbdServer;
import io.qcow4j.testing.NbdExport;
import io.qcow4j.testing.Qemu;

/**
 * The VM owner's side of an NBD backup, as libvirt keeps checkpoints, done with qemu-img
 * while no server runs: one persistent bitmap per checkpoint, only the newest enabled; what
 * changed since a checkpoint is the merge of its bitmap and every later one, exported as
 * bitmap {@value #EXPORTED} by qemu-nbd -B or by our server (what {@code qcow4j nbd -B} runs).
 */
final class NbdSets {
    static final String EXPORTED = "backup";
    /** The export's name, as libvirt names it after the disk: it names the backup files. */
    static final String NAME = "vda";

    private NbdSets() {
    }

    /** An export of an image, stopped on close. */
    interface Export extends AutoCloseable {
        String uri();

        /** Drops the server at once (SIGKILL for qemu-nbd). */
        void kill() throws IOException;

        @Override
        void close() throws IOException;
    }

    /** The checkpoints of one image, oldest first. */
    static final class Owner {
        final Path img;
        final List<String> checkpoints = new ArrayList<>();

        Owner(Path img) {
            this.img = img;
        }

        /** A new checkpoint: the newest bitmap stops recording, a new one starts. */
        void checkpoint(String name) {
            if (!checkpoints.isEmpty()) {
                Qemu.qemuImg("bitmap", "--disable", img.toString(), checkpoints.get(checkpoints.size() - 1)).assertOk();
            }
            Qemu.qemuImg("bitmap", "--add", img.toString(), name).assertOk();
            checkpoints.add(name);
        }

        /** Bitmap {@value #EXPORTED}: every change since checkpoint {@code since}. */
        void changesSince(String since) {
            int at = checkpoints.indexOf(since);
            if (at < 0) {
                throw new AssertionError("no checkpoint " + since + " in " + checkpoints);
            }
            List<String> cmd = new ArrayList<>(List.of("bitmap", "--add", "--disable"));
            for (String c : checkpoints.subList(at, checkpoints.size())) {
                cmd.add("--merge");
                cmd.add(c);
            }
            cmd.add(img.toString());
            cmd.add(EXPORTED);
            Qemu.qemuImg(cmd.toArray(String[]::new)).assertOk();
        }

        void dropExported() {
            Qemu.qemuImg("bitmap", "--remove", img.toString(), EXPORTED).assertOk();
        }
    }

    /** {@code qemu-nbd -r -f qcow2 -x vda [-B bitmap] IMG} on a private socket. */
    static Export qemuNbd(Path img, String bitmap) {
        NbdExport nbd = bitmap == null ? NbdExport.qemuNbd(img, "-r", "-f", "qcow2", "-x", NAME)
                : NbdExport.qemuNbd(img, "-r", "-f", "qcow2", "-x", NAME, "-B", bitmap);
        return new Export() {
            @Override
            public String uri() {
                return nbd.uri(NAME);
            }

            @Override
            public void kill() {
                nbd.kill();
            }

            @Override
            public void close() {
                nbd.close();
            }
        };
    }

    /** Our NBD server over the image opened read-only, [offering the bitmap]: what {@code qcow4j nbd -r [-B]} runs. */
    static Export ours(Path img, String bitmap) throws IOException {
        Path dir = Files.createTempDirectory(Path.of("/tmp"), "qcow4j-nbd");
        Path socket = dir.resolve("sock");
        Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly());
        NbdServer server;
        try {
            NbdServer.Builder b = NbdServer.builder(image).unixSocket(socket).exportName(NAME).readOnly(true)
                    .persistent(true);
            if (bitmap != null) {
                b.bitmap(bitmap);
            }
            server = b.start();
        } catch (IOException | RuntimeException e) {
            image.close();
            throw e;
        }
        return new Export() {
            @Override
            public String uri() {
                return "nbd+unix:///" + NAME + "?socket=" + socket;
            }

            @Override
            public void kill() throws IOException {
                close();
            }

            @Override
            public void close() throws IOException {
                try {
                    server.close();
                } finally {
                    image.close();
                    Files.deleteIfExists(socket);
                    Files.deleteIfExists(dir);
                }
            }
        };
    }

    static Export export(String server, Path img, String bitmap) throws IOException {
        return server.equals("qemu-nbd") ? qemuNbd(img, bitmap) : ours(img, bitmap);
    }

    /** One backup from an export of {@code img} (offering bitmap {@value #EXPORTED} when {@code o} names it). */
    static BackupResult backup(String server, Path img, Path dir, BackupOptions o) throws IOException {
        String bitmap = o.bitmap;
        try (Export e = export(server, img, bitmap); NbdSource src = NbdSource.open(e.uri(), bitmap)) {
            return BackupSet.backup(dir, src, o);
        }
    }
}
