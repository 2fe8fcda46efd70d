package io.qcow4j.backup;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * A directory of stream files that virtnbdbackup wrote (no manifest): the files in the order
 * virtnbdrestore applies them (modification time), each building on the one before, except a
 * full or copy, which starts a chain.
 */
final class ForeignSet {
    private ForeignSet() {
    }

    static Manifest scan(SetStore store) throws IOException {
        List<SetStore.Entry> files = new ArrayList<>(store.list(".data"));
        if (files.isEmpty()) {
            throw new BackupException("no backup set in '" + store.name() + "' (no " + Manifest.FILE + ", no .data stream files)");
        }
        files.sort(Comparator.comparingLong(SetStore.Entry::modified).thenComparing(SetStore.Entry::name));
        Manifest m = new Manifest();
        BackupRecord prev = null;
        int seq = 1;
        for (SetStore.Entry f : files) {
            StreamIndex ix;
            try (SetStore.ReadFile in = store.open(f.name())) {
                ix = StreamIndex.scan(in);
            }
            Map<String, Object> meta = ix.meta;
            BackupRecord b = new BackupRecord();
            b.seq = seq++;
            b.file = f.name();
            boolean incremental = Boolean.TRUE.equals(meta.get("incremental"));
            b.level = levelOf(b.file, incremental);
            b.format = Format.STREAM.label();
            b.compressed = ix.compressed;
            Object cp = meta.get("checkpointName");
            b.checkpoint = cp instanceof String s && !s.isEmpty() ? s : null;
            Object pc = meta.get("parentCheckpoint");
            b.since = pc instanceof String s && !s.isEmpty() ? s : null;
            b.virtualSize = ((Number) meta.get("virtualSize")).longValue();
            b.time = String.valueOf(meta.get("date"));
            b.parent = incremental && prev != null ? prev.file : null;
            if (incremental && prev == null) {
                throw new BackupException("'" + b.file + "' is incremental but no full backup comes before it");
            }
            b.extents = ix.extents;
            for (ExtentRecord e : ix.extents) {
                if (e.isZero()) {
                    b.zeroBytes += e.length;
                } else {
                    b.dataBytes += e.length;
                }
            }
            b.bytesWritten = f.size();
            m.disk = String.valueOf(meta.get("diskName"));
            m.backups.add(b);
            prev = b;
        }
        return m;
    }

    private static String levelOf(String name, boolean incremental) {
        for (String l : new String[] {"full", "copy", "diff", "inc"}) {
            if (name.contains("." + l + ".")) {
                return l;
            }
        }
        return incremental ? "inc" : "full";
    }
}
