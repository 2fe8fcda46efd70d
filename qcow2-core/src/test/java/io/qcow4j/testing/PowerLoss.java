package io.qcow4j.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import io.qcow4j.core.storage.StorageHook;

/**
 * Power-loss replay. While a recording is open, every image file opened read-write goes
 * through a {@link RecordingStorage}, which logs each positional write, each change of the
 * file's length and each completed flush, across all files, in one order. The test marks
 * where each of its operations begins ({@link #begin}) and when it was acknowledged
 * ({@link #ack}); each flush notes how many operations were acknowledged before it.
 *
 * <p>{@link #crash} rebuilds the files as a disk could hold them after a power failure at
 * a point of the log: for each file, everything up to its last completed flush before that
 * point, plus any subset of its later writes (each write possibly torn: only some of its
 * 512-byte sectors), applied in the order they were issued; a change of length after the
 * last flush may or may not have happened. A write never tears inside a sector.
 */
public final class PowerLoss implements AutoCloseable {
    public static final int SECTOR = 512;

    /** One entry of the log. */
    public record Event(Kind kind, int file, long offset, byte[] data, long length, int acked, int op) {
    }

    public enum Kind { WRITE, RESIZE, TRUNCATE, FLUSH, BEGIN, ACK }

    private final List<Event> events = new ArrayList<>();
    private final List<Path> files = new ArrayList<>();
    private final List<byte[]> base = new ArrayList<>();
    private final Map<Path, Integer> index = new HashMap<>();
    private final boolean onlyListed;
    private int acked;
    private int op = -1;

    private PowerLoss(List<Path> listed) {
        this.onlyListed = !listed.isEmpty();
        for (Path p : listed) {
            fileIndex(p, true);
        }
    }

    /**
     * Starts recording every image file opened read-write from now on (or only
     * {@code files}, when given; they must exist). Close to stop.
     */
    public static PowerLoss record(Path... files) {
        PowerLoss r = new PowerLoss(List.of(files));
        StorageHook.install((file, storage) -> {
            Integer i = r.fileIndex(file, !r.onlyListed);
            return i == null ? storage : new RecordingStorage(storage, r, i);
        });
        return r;
    }

    private synchronized Integer fileIndex(Path file, boolean add) {
        Path real;
        try {
            real = file.toRealPath();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Integer i = index.get(real);
        if (i == null && add) {
            i = files.size();
            index.put(real, i);
            files.add(real);
            try {
                // what the disk holds when recording of this file starts (a new file was flushed by create)
                base.add(Files.readAllBytes(real));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return i;
    }

    @Override
    public void close() {
        StorageHook.install(null);
    }

    /** The test's operation {@code n} (0, 1, ...) begins. */
    public synchronized void begin(int n) {
        op = n;
        events.add(new Event(Kind.BEGIN, -1, 0, null, 0, acked, n));
    }

    /** Operations {@code 0..n} are acknowledged (returned). */
    public synchronized void ack(int n) {
        acked = n + 1;
        events.add(new Event(Kind.ACK, -1, 0, null, 0, acked, n));
    }

    synchronized void write(int file, long offset, byte[] data) {
        if (data.length > 0) {
            events.add(new Event(Kind.WRITE, file, offset, data, 0, acked, op));
        }
    }

    synchronized void resize(int file, long length, boolean truncate) {
        events.add(new Event(truncate ? Kind.TRUNCATE : Kind.RESIZE, file, 0, null, length, acked, op));
    }

    synchronized void flush(int file) {
        events.add(new Event(Kind.FLUSH, file, 0, null, 0, acked, op));
    }

    public synchronized List<Event> events() {
        return List.copyOf(events);
    }

    public synchronized List<Path> files() {
        return List.copyOf(files);
    }

    public synchronized int size() {
        return events.size();
    }

    /** Number of events of a kind. */
    public synchronized long count(Kind kind) {
        return events.stream().filter(e -> e.kind == kind).count();
    }

    /**
     * What the disk may hold after a power failure just before event {@code point}.
     *
     * @param keep probability that a write issued after the last flush reached the disk
     * @param tear probability that such a write of several sectors reached it only in part
     */
    public synchronized Crash crash(int point, Random random, double keep, double tear) {
        return crash(point, random, keep, tear, null);
    }

    /**
     * {@link #crash(int, Random, double, double)}, where only the operations {@code barrier}
     * accepts (a flush, a close) promise durability: the crash's {@link Crash#durable()} is
     * then the number of operations up to the last such operation that returned.
     */
    public synchronized Crash crash(int point, Random random, double keep, double tear,
                                    java.util.function.IntPredicate barrier) {
        int n = files.size();
        int[] lastFlush = new int[n];
        Arrays.fill(lastFlush, -1);
        int inflight = -1;
        for (int i = 0; i < point; i++) {
            Event e = events.get(i);
            if (e.kind == Kind.FLUSH) {
                lastFlush[e.file] = i;
            }
            if (e.kind == Kind.BEGIN) {
                inflight = e.op;
            }
        }
        Image[] images = new Image[n];
        for (int f = 0; f < n; f++) {
            images[f] = new Image(base.get(f));
        }
        int kept = 0;
        int dropped = 0;
        int torn = 0;
        int[] durableAck = new int[n];
        for (int f = 0; f < n; f++) {
            durableAck[f] = lastFlush[f] < 0 ? 0 : events.get(lastFlush[f]).acked;
        }
        for (int i = 0; i < point; i++) {
            Event e = events.get(i);
            if (e.kind == Kind.BEGIN || e.kind == Kind.FLUSH || e.kind == Kind.ACK) {
                continue;
            }
            Image img = images[e.file];
            if (i < lastFlush[e.file]) {
                img.apply(e, null);
                continue;
            }
            if (random.nextDouble() >= keep) {
                dropped++;
                continue;
            }
            long first = e.offset / SECTOR;
            long last = (e.offset + (e.data == null ? 0 : e.data.length) - 1) / SECTOR;
            if (e.kind == Kind.WRITE && last > first && random.nextDouble() < tear) {
                // torn: each sector on its own
                boolean[] sectors = new boolean[(int) (last - first + 1)];
                for (int s = 0; s < sectors.length; s++) {
                    sectors[s] = random.nextBoolean();
                }
                img.apply(e, sectors);
                torn++;
            } else {
                img.apply(e, null);
                kept++;
            }
        }
        if (barrier != null) {
            int promised = 0;
            for (int i = 0; i < point; i++) {
                Event e = events.get(i);
                if (e.kind == Kind.ACK && barrier.test(e.op)) {
                    promised = e.op + 1;
                }
            }
            Arrays.fill(durableAck, promised);
        }
        Map<Path, byte[]> out = new HashMap<>();
        for (int f = 0; f < n; f++) {
            out.put(files.get(f), images[f].bytes());
        }
        String what = "crash before event " + point + " of " + events.size() + " (in operation " + inflight
                + "; last flushes " + Arrays.toString(lastFlush) + "; after them " + kept + " writes kept, " + torn
                + " torn, " + dropped + " lost)";
        return new Crash(point, out, durableAck, inflight, what);
    }

    /** The files after a power failure. */
    public record Crash(int point, Map<Path, byte[]> contents, int[] durableAck, int inflight, String description) {
        /** Operations acknowledged before the last flush of file {@code f}. */
        public int durable(int f) {
            return durableAck[f];
        }

        /** Operations acknowledged before the last flush of every file (the guarantee across files). */
        public int durable() {
            return Arrays.stream(durableAck).min().orElse(0);
        }

        /** Writes the files, keeping their names, into {@code dir}. */
        public void writeTo(Path dir) throws IOException {
            for (Map.Entry<Path, byte[]> e : contents.entrySet()) {
                Files.write(dir.resolve(e.getKey().getFileName()), e.getValue());
            }
        }
    }

    /** A file's bytes as the replay builds them. */
    private static final class Image {
        private byte[] bytes;
        private long length;

        Image(byte[] base) {
            this.bytes = base.clone();
            this.length = base.length;
        }

        void apply(Event e, boolean[] sectors) {
            switch (e.kind) {
                case WRITE -> {
                    long end = e.offset + e.data.length;
                    ensure(end);
                    if (sectors == null) {
                        System.arraycopy(e.data, 0, bytes, (int) e.offset, e.data.length);
                        length = Math.max(length, end);
                    } else {
                        long firstSector = e.offset / SECTOR;
                        for (int s = 0; s < sectors.length; s++) {
                            if (!sectors[s]) {
                                continue;
                            }
                            long from = Math.max(e.offset, (firstSector + s) * SECTOR);
                            long to = Math.min(end, (firstSector + s + 1) * SECTOR);
                            System.arraycopy(e.data, (int) (from - e.offset), bytes, (int) from, (int) (to - from));
                            length = Math.max(length, to);
                        }
                    }
                }
                case RESIZE -> {
                    ensure(e.length);
                    length = Math.max(length, e.length);
                }
                case TRUNCATE -> {
                    ensure(e.length);
                    if (e.length < length) {
                        Arrays.fill(bytes, (int) e.length, (int) Math.min(bytes.length, length), (byte) 0);
                    }
                    length = e.length;
                }
                default -> throw new IllegalStateException(e.kind.toString());
            }
        }

        private void ensure(long end) {
            if (end > Integer.MAX_VALUE - 16) {
                throw new IllegalStateException("replayed files are held in memory: " + end + " bytes is too much");
            }
            if (end > bytes.length) {
                bytes = Arrays.copyOf(bytes, (int) Math.max(end, Math.min(Integer.MAX_VALUE - 16, bytes.length * 2L)));
            }
        }

        byte[] bytes() {
            return Arrays.copyOf(bytes, (int) length);
        }
    }
}
