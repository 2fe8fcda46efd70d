package io.qcow4j.backup;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * A backup set in a local directory: a file is written as NAME.partial, flushed and renamed;
 * the manifest replaced the same way; one writer at a time by a lock on {@code .lock}.
 */
final class DirectoryStore implements SetStore {
    private final Path dir;

    DirectoryStore(Path dir) {
        this.dir = dir;
    }

    @Override
    public String name() {
        return dir.toString();
    }

    @Override
    public Path directory() {
        return dir;
    }

    @Override
    public byte[] readAll(String file) throws IOException {
        try {
            return Files.readAllBytes(dir.resolve(file));
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    @Override
    public void writeAtomically(String file, byte[] bytes) throws IOException {
        Files2.writeAtomically(dir.resolve(file), bytes);
    }

    @Override
    public List<Entry> list(String suffix) throws IOException {
        List<Entry> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, p -> p.getFileName().toString().endsWith(suffix))) {
            for (Path p : ds) {
                out.add(new Entry(p.getFileName().toString(), Files.size(p), Files.getLastModifiedTime(p).toMillis()));
            }
        }
        return out;
    }

    @Override
    public ReadFile open(String file) throws IOException {
        FileChannel ch = FileChannel.open(dir.resolve(file), StandardOpenOption.READ);
        return new ReadFile() {
            @Override
            public String name() {
                return file;
            }

            @Override
            public long size() throws IOException {
                return ch.size();
            }

            @Override
            public int read(long pos, ByteBuffer dst) throws IOException {
                return Files2.readFully(ch, dst, pos);
            }

            @Override
            public void close() throws IOException {
                ch.close();
            }
        };
    }

    @Override
    public Output create(String file, long sizeHint) throws IOException {
        Files.createDirectories(dir);
        Path partial = dir.resolve(file + Files2.PARTIAL);
        FileChannel ch = FileChannel.open(partial, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
        return new Output() {
            private long pos;
            private boolean published;

            @Override
            public void write(ByteBuffer b) throws IOException {
                while (b.hasRemaining()) {
                    pos += ch.write(b, pos);
                }
            }

            @Override
            public void rewrite(long at, ByteBuffer b) throws IOException {
                if (at < 0 || at + b.remaining() > Math.min(HEAD, pos)) {
                    throw new IllegalArgumentException("rewrite of " + b.remaining() + " bytes at " + at);
                }
                while (b.hasRemaining()) {
                    at += ch.write(b, at);
                }
            }

            @Override
            public void publish() throws IOException {
                ch.force(true);
                ch.close();
                Files2.publish(partial, dir.resolve(file));
                published = true;
            }

            @Override
            public void close() throws IOException {
                ch.close();
                if (!published) {
                    Files.deleteIfExists(partial);
                }
            }
        };
    }

    @Override
    public boolean exists(String file) {
        return Files.exists(dir.resolve(file));
    }

    @Override
    public void delete(String file) throws IOException {
        Files.deleteIfExists(dir.resolve(file));
    }

    @Override
    public void discard(String file) throws IOException {
        Files.deleteIfExists(dir.resolve(file + Files2.PARTIAL));
        Files.deleteIfExists(dir.resolve(file));
    }

    @Override
    public Closeable lock() throws IOException {
        Files.createDirectories(dir);
        return SetLock.acquire(dir);
    }
}
