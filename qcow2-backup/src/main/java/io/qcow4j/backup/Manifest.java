package io.qcow4j.backup;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.annotation.JsonNaming;

/**
 * The backup set's manifest ({@code manifest.json} in its directory), the source of truth of
 * which backups completed: a backup's file counts only once its record is here. Written whole
 * to a temporary file, flushed and renamed over the old one, so a reader sees the old or the
 * new manifest, never a mix.
 */
@JsonNaming(PropertyNamingStrategies.KebabCaseStrategy.class)
@JsonInclude(JsonInclude.Include.NON_NULL)
public final class Manifest {
    public static final String FILE = "manifest.json";
    static final ObjectMapper JSON = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    /** Format version of this file. */
    public int version = 1;
    /** The disk's name (file names, the stream's diskName). */
    public String disk;
    /** Completed backups, oldest first. */
    public List<BackupRecord> backups = new ArrayList<>();
    /** A backup or prune started and not finished: what the next run must undo or complete. */
    public Pending pending;

    /** A started backup (its new checkpoint, the ones it froze, its partial file) or prune. */
    @JsonNaming(PropertyNamingStrategies.KebabCaseStrategy.class)
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public static final class Pending {
        public String checkpoint;
        public List<String> frozen = new ArrayList<>();
        public String file;
        /** Prune: backing names still to rewrite (file, new parent) and files still to delete. */
        public List<List<String>> rebase;
        public List<String> delete;
    }

    static Path path(Path dir) {
        return dir.resolve(FILE);
    }

    /** The manifest of {@code dir}, or null when there is none. */
    public static Manifest load(Path dir) throws IOException {
        return load(SetStore.directory(dir));
    }

    /** The manifest of the set in {@code store}, or null when there is none. */
    public static Manifest load(SetStore store) throws IOException {
        byte[] bytes = store.readAll(FILE);
        if (bytes == null) {
            return null;
        }
        String where = store.name() + "/" + FILE;
        try {
            Manifest m = JSON.readValue(bytes, Manifest.class);
            if (m.version != 1 || m.backups == null) {
                throw new BackupException(where + ": not a manifest of version 1");
            }
            return m;
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new BackupException(where + ": not a valid manifest: " + e.getOriginalMessage(), e);
        }
    }

    /** Writes the manifest atomically and durably. */
    public void save(Path dir) throws IOException {
        save(SetStore.directory(dir));
    }

    /** Writes the manifest atomically and durably. */
    public void save(SetStore store) throws IOException {
        store.writeAtomically(FILE, JSON.writeValueAsString(this).concat("\n").getBytes(StandardCharsets.UTF_8));
    }

    public BackupRecord find(String fileOrCheckpoint) {
        for (BackupRecord b : backups) {
            if (b.file.equals(fileOrCheckpoint) || fileOrCheckpoint.equals(b.checkpoint)) {
                return b;
            }
        }
        return null;
    }

    public BackupRecord byFile(String file) {
        for (BackupRecord b : backups) {
            if (b.file.equals(file)) {
                return b;
            }
        }
        return null;
    }

    /** The point's chain: its full first, then each backup it builds on, the point itself last. */
    public List<BackupRecord> chainOf(BackupRecord point) throws BackupException {
        List<BackupRecord> out = new ArrayList<>();
        BackupRecord b = point;
        while (b != null) {
            if (out.contains(b) || out.size() > backups.size()) {
                throw new BackupException("the manifest's parents form a loop at '" + b.file + "'");
            }
            out.add(0, b);
            if (b.parent == null) {
                break;
            }
            BackupRecord p = byFile(b.parent);
            if (p == null) {
                throw new BackupException("'" + b.file + "' builds on '" + b.parent + "', which the manifest does not list");
            }
            b = p;
        }
        return out;
    }

    /** The newest full or copy backup (the start of the current chain), or null. */
    public BackupRecord latestFull() {
        for (int i = backups.size() - 1; i >= 0; i--) {
            if (backups.get(i).parent == null) {
                return backups.get(i);
            }
        }
        return null;
    }

    int nextSeq() {
        int n = 0;
        for (BackupRecord b : backups) {
            n = Math.max(n, b.seq);
        }
        return n + 1;
    }
}
