package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Hostile input, command by command: a handful of corrupt images, and every command that
 * reads an image run on each (in this JVM). Each run must end within seconds with a report
 * or exactly one error line, never a stack trace; fail wherever qemu-img (qemu-io for
 * {@code io}) fails on the same file; and leave the file's bytes as they were unless it
 * succeeded at a write (as qemu-img does on the same input).
 */
class HostileInputIT {
    private static final Duration LIMIT = Duration.ofSeconds(5);
    private static final Duration ORACLE_LIMIT = Duration.ofSeconds(30);
    private static final String IMG = "img.qcow2";
    private static final long CLUSTER = 65536;
    private static final long COPIED = 1L << 63;

    @TempDir
    static Path originals;

    @TempDir
    Path tmp;

    /** A 4 MiB image over a backing file, with data, an L2 table and a bitmap: something to break. */
    @BeforeAll
    static void makeImage() {
        Cli.qemuImg(originals, "create", "-q", "-f", "qcow2", "base.qcow2", "4M").assertOk();
        Cli.qemuIo(originals, "-c", "write -P 0x11 0 1M", "base.qcow2").assertOk();
        Cli.qemuImg(originals, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", IMG).assertOk();
        Cli.qemuImg(originals, "bitmap", "--add", IMG, "b1").assertOk();
        Cli.qemuIo(originals, "-c", "write -P 0x5a 64k 64k", "-c", "write -P 0x6b 2M 64k", IMG).assertOk();
        Cli.qemuImg(originals, "create", "-q", "-f", "qcow2", "good.qcow2", "4M").assertOk();
        Cli.qemuImg(originals, "create", "-q", "-f", "qcow2", "nb.qcow2", "4M").assertOk();
    }

    /**
     * One way to break the image: a name and an edit of its bytes. {@code qemuRecurses}: qemu-img
     * 7.2 never ends on it (check, map, convert, compare and snapshot -l recurse until killed),
     * so it is not asked; every command that opens the backing chain must fail instead.
     */
    record Damage(String name, Consumer<Editor> edit, boolean qemuRecurses) {
        Damage(String name, Consumer<Editor> edit) {
            this(name, edit, false);
        }

        @Override
        public String toString() {
            return name;
        }
    }

    /** The commands that do not open the backing chain (qemu-img's, and qcow4j dump). */
    private static boolean chainFree(String[] args) {
        return args[0].equals("dump") || args[0].equals("bitmap")
                || args[0].equals("info") && !List.of(args).contains("--backing-chain");
    }

    static List<Damage> damages() {
        return List.of(
            new Damage("bad magic", e -> e.u32(0, 0x514649fa)),
            new Damage("L1 table offset beyond the file", e -> e.u64(40, e.clustersPastEnd(16))),
            new Damage("huge L1 size", e -> e.u32(36, 0x7fffffff)),
            new Damage("L1 size past the file", e -> e.u32(36, 0x400000)),
            new Damage("refcount table offset beyond the file", e -> e.u64(48, e.clustersPastEnd(16))),
            new Damage("refcount table clusters huge", e -> e.u32(56, 0x7fffffff)),
            new Damage("bitmap directory beyond the file", e -> e.u64(e.extension(0x23852875) + 16, e.clustersPastEnd(4))),
            new Damage("bitmap directory size huge", e -> e.u64(e.extension(0x23852875) + 8, 0x7fffffffffffL)),
            new Damage("L1 entry beyond the file", e -> e.u64(e.u64(40), e.clustersPastEnd(8) | COPIED)),
            new Damage("L1 entry into the refcount table", e -> e.u64(e.u64(40), e.u64(48) | COPIED)),
            new Damage("L2 entry beyond the file", e -> e.u64(e.l2() + 8, e.clustersPastEnd(8) | COPIED)),
            new Damage("L2 entry into the header", e -> e.u64(e.l2() + 8, COPIED)),
            new Damage("refcount block beyond the file", e -> e.u64(e.u64(48), e.clustersPastEnd(8))),
            new Damage("bitmap table beyond the file", e -> e.u64(e.u64(e.extension(0x23852875) + 16), e.clustersPastEnd(8))),
            new Damage("snapshot table beyond the file", e -> e.u32(60, 1).u64(64, e.clustersPastEnd(8))),
            new Damage("snapshot count huge", e -> e.u32(60, 0x7fffffff).u64(64, e.u64(48))),
            new Damage("backing file is the image itself", e -> e.backingName(IMG), true),
            new Damage("truncated to half", e -> e.truncate(e.length() / 2 & ~511L)),
            new Damage("truncated in the header", e -> e.truncate(100)),
            new Damage("header_length huge", e -> e.u32(100, 0x7fffffff)));
    }

    /** The commands that read an image; IMG stands for the damaged file. */
    static List<String[]> commands() {
        List<String[]> all = new ArrayList<>();
        for (String line : new String[] {
            "info IMG", "info --output=json IMG", "info --backing-chain IMG",
            "check IMG", "check --output=json IMG",
            "map IMG", "map --output=json IMG",
            "dump IMG", "dump --output=json IMG", "dump IMG header", "dump IMG extensions", "dump IMG l1",
            "dump IMG l2 0", "dump IMG refcounts", "dump IMG bitmaps", "dump IMG snapshots",
            "compare IMG good.qcow2", "convert -O qcow2 IMG out.qcow2", "convert IMG out.raw",
            "bitmap --add IMG b0", "snapshot -l IMG", "commit IMG", "rebase -b nb.qcow2 -F qcow2 IMG",
            "stream IMG", "resize IMG +1M", "checkpoint list IMG",
        }) {
            all.add(line.split(" "));
        }
        all.add(new String[] {"io", "-c", "read 0 64k", "IMG"});
        all.add(new String[] {"io", "-r", "-c", "read 0 4M", "IMG"});
        return all;
    }

    static Stream<Arguments> cases() {
        return damages().stream().map(Arguments::of);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void everyCommandEndsCleanly(Damage damage) throws IOException {
        List<String> problems = new ArrayList<>();
        for (String[] template : commands()) {
            String[] args = Arrays.stream(template).map(a -> a.equals("IMG") ? IMG : a).toArray(String[]::new);
            String what = damage + ": " + String.join(" ", args);
            Path ours = fresh(damage, "ours");
            Path theirs = fresh(damage, "theirs");
            String before = sha256(ours.resolve(IMG));
            Qemu.Result r = assertTimeoutPreemptively(LIMIT, () -> Cli.qcow4j(ours, args), what);
            Qemu.Result q = damage.qemuRecurses() ? null : oracle(theirs, args);
            String err = r.stderr();
            if (err.contains("Exception") || err.contains("\tat ")) {
                problems.add(what + ": stack trace\n" + r.describe());
                continue;
            }
            // check's report is on stderr too (qemu-img's "ERROR ..." lines); a failed compare
            // or io command reports on stdout, as qemu-img and qemu-io do
            boolean check = args[0].equals("check");
            boolean stdoutReport = err.isEmpty() && !r.stdout().isEmpty();
            List<String> errors = err.lines().filter(l -> !l.startsWith("qcow4j: warning: ")).toList();
            if (r.exitCode() != 0 && !check && !stdoutReport && (errors.size() != 1 || !errors.get(0).startsWith("qcow4j: "))) {
                problems.add(what + ": not exactly one error line\n" + r.describe());
            }
            if (r.exitCode() == 0 && !check && !err.lines().allMatch(l -> l.startsWith("qcow4j: warning: "))) {
                problems.add(what + ": succeeded with errors on stderr\n" + r.describe());
            }
            if (q != null && q.exitCode() != 0 && r.exitCode() == 0) {
                problems.add(what + ": succeeded where " + q.command().get(0) + " fails\n" + q.describe() + "\n" + r.describe());
            }
            if (damage.qemuRecurses() && !chainFree(args) && r.exitCode() == 0) {
                problems.add(what + ": succeeded on a backing chain that loops\n" + r.describe());
            }
            boolean wrote = r.exitCode() == 0 && WRITERS.contains(args[0]);
            if (!wrote && !before.equals(sha256(ours.resolve(IMG)))) {
                problems.add(what + ": the file changed (exit " + r.exitCode() + ")");
            }
            System.out.println("[" + what + "] ours " + r.exitCode() + " " + err.strip().replace('\n', '|')
                    + (q == null ? "" : " | qemu " + q.exitCode() + " " + q.stderr().strip().replace('\n', '|')));
        }
        assertTrue(problems.isEmpty(), String.join("\n\n", problems));
    }

    private static final List<String> WRITERS = List.of("bitmap", "commit", "rebase", "stream", "resize", "io", "convert");

    /** What qemu-img (or qemu-io) does with the same command on its own copy; null: no such command. */
    private static Qemu.Result oracle(Path dir, String[] args) {
        return switch (args[0]) {
            case "dump", "stream", "checkpoint" -> null;
            case "io" -> Qemu.run(dir, ORACLE_LIMIT, Cli.prepend("qemu-io", Arrays.copyOfRange(args, 1, args.length)));
            default -> Qemu.run(dir, ORACLE_LIMIT, Cli.prepend("qemu-img", args));
        };
    }

    /** A directory with the damaged image and the good files next to it. */
    private Path fresh(Damage damage, String who) throws IOException {
        Path dir = tmp.resolve(who);
        if (Files.exists(dir)) {
            try (Stream<Path> files = Files.list(dir)) {
                for (Path p : (Iterable<Path>) files::iterator) {
                    Files.delete(p);
                }
            }
        } else {
            Files.createDirectories(dir);
        }
        for (String name : List.of("base.qcow2", "good.qcow2", "nb.qcow2")) {
            Files.copy(originals.resolve(name), dir.resolve(name));
        }
        Editor e = new Editor(Files.readAllBytes(originals.resolve(IMG)));
        damage.edit().accept(e);
        Files.write(dir.resolve(IMG), e.bytes());
        return dir;
    }

    static String sha256(Path p) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    /** Big-endian edits of an image's bytes, as the qcow2 spec lays them out. */
    static final class Editor {
        private byte[] b;

        Editor(byte[] b) {
            this.b = b;
        }

        byte[] bytes() {
            return b;
        }

        long length() {
            return b.length;
        }

        Editor u32(long offset, long value) {
            ByteBuffer.wrap(b).putInt((int) offset, (int) value);
            return this;
        }

        long u64(long offset) {
            return ByteBuffer.wrap(b).getLong((int) offset);
        }

        /** The offset of the L2 table of L1 entry 0. */
        long l2() {
            return u64(u64(40)) & 0x00fffffffffffe00L;
        }

        Editor u64(long offset, long value) {
            ByteBuffer.wrap(b).putLong((int) offset, value);
            return this;
        }

        Editor truncate(long length) {
            b = Arrays.copyOf(b, (int) length);
            return this;
        }

        /** A cluster-aligned offset {@code n} clusters past the end of the file. */
        long clustersPastEnd(int n) {
            return (b.length + CLUSTER - 1) / CLUSTER * CLUSTER + n * CLUSTER;
        }

        /** The offset of the data of header extension {@code type}. */
        long extension(int type) {
            ByteBuffer bb = ByteBuffer.wrap(b);
            int pos = bb.getInt(100);
            while (pos + 8 <= CLUSTER) {
                int t = bb.getInt(pos);
                int len = bb.getInt(pos + 4);
                if (t == type) {
                    return pos + 8;
                }
                if (t == 0) {
                    break;
                }
                pos += 8 + (len + 7) / 8 * 8;
            }
            throw new AssertionError("no header extension 0x" + Integer.toHexString(type));
        }

        /** Rewrites the backing file name in place (it must fit where the old one was). */
        Editor backingName(String name) {
            ByteBuffer bb = ByteBuffer.wrap(b);
            long offset = bb.getLong(8);
            byte[] n = name.getBytes(StandardCharsets.UTF_8);
            assertFalse(n.length > bb.getInt(16), "longer backing name");
            System.arraycopy(n, 0, b, (int) offset, n.length);
            return u32(16, n.length);
        }
    }
}
