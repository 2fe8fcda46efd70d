package io.qcow4j.core.engine;

import java.io.IOException;

import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.format.CompressedDescriptor;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.format.SnapshotEntry;
import io.qcow4j.core.storage.Storage;

/**
 * Recomputes every cluster's refcount from the references in the image (found by the one
 * {@link MetadataWalk} of its metadata), and writes the result back: first raising counts that are too low (so nothing in use can be handed
 * out), then lowering those that are too high (leaks).
 */
public final class RefcountRebuilder {
    private RefcountRebuilder() {
    }

    /** Repairs the refcounts of an image whose dirty bit was left set, then clears the bit. */
    public static void repairDirty(Qcow2Engine image) throws IOException {
        synchronized (image.lock()) {
            rebuild(image);
            EngineParts p = image.engineParts();
            p.storage().flush();
            image.updateHeader(h -> h.withIncompatibleFeatures(h.incompatibleFeatures() & ~Header.INCOMPAT_DIRTY));
            // not rewriteHeader(): that would prepare the first write, which is what calls this
            image.writeHeader();
            p.storage().flush();
        }
    }

    /** Writes the computed refcounts; returns the number of clusters whose count changed. */
    public static long rebuild(Qcow2Engine image) throws IOException {
        synchronized (image.lock()) {
            EngineParts p = image.engineParts();
            ClusterCounts expected = count(p);
            long changed = 0;
            p.refcounts().setExcluded(expected::used);
            try {
                long end = Math.max(expected.maxCluster() + 1, clusters(p));
                for (long c = 0; c < end; c++) {
                    long want = expected.get(c);
                    if (want > p.refcounts().get(c)) {
                        p.refcounts().set(c, want);
                        changed++;
                    }
                }
                // new refcount blocks are references too: count again before lowering
                expected = count(p);
                end = Math.max(expected.maxCluster() + 1, clusters(p));
                for (long c = 0; c < end; c++) {
                    long want = expected.get(c);
                    long have = p.refcounts().get(c);
                    if (want != have) {
                        p.refcounts().set(c, want);
                        changed++;
                    }
                }
            } finally {
                p.refcounts().setExcluded(null);
            }
            return changed;
        }
    }

    private static long clusters(EngineParts p) {
        int bits = p.geometry().clusterBits();
        return (p.storage().length() + (1L << bits) - 1) >>> bits;
    }

    /** Counts every reference the image's metadata makes (refusing a structure it cannot trust). */
    public static ClusterCounts count(EngineParts p) throws IOException {
        ClusterCounts counts = new ClusterCounts();
        int bits = p.geometry().clusterBits();
        MetadataWalk.walk(p, new MetadataWalk.FileVisitor(p) {
            @Override
            protected void structure(MetadataWalk.Structure s, long offset, long length) throws CorruptImageException {
                long fileLength = p.storage().length();
                if (s == MetadataWalk.Structure.CRYPTO_HEADER) {
                    // the LUKS header area (validated at open): its keyslots must never be freed
                    if (offset > 0 && HostOffsets.fits(offset, length, fileLength)) {
                        addRange(counts, offset, length, bits);
                    }
                    return;
                }
                // told before its reader checks it (qemu's order): refused before anything is
                // counted; its last cluster may end past the file (an image's last cluster is
                // not always written whole)
                if (!HostOffsets.fits(offset, length, clusters(p) << bits)) {
                    String name = s.words();
                    throw new CorruptImageException(name, offset,
                            Character.toUpperCase(name.charAt(0)) + name.substring(1) + " extends past the end of the file");
                }
                addRange(counts, offset, length, bits);
            }

            @Override
            protected void l1Tree(long offset, int entries, SnapshotEntry snapshot) throws IOException {
                countTree(p, counts, l1(snapshot), offset);
            }

            @Override
            protected void refcountBlock(MetadataWalk w) throws CorruptImageException {
                // a broken refcount structure cannot be rebuilt in place: refuse before writing
                long block = w.checkedBlock();
                if (block != 0) {
                    counts.add(block >>> bits);
                }
            }
        });
        return counts;
    }

    /** The L2 tables and clusters an L1 table names (the table itself is counted as a structure). */
    private static void countTree(EngineParts p, ClusterCounts counts, long[] l1, long l1Offset) throws IOException {
        int bits = p.geometry().clusterBits();
        Storage storage = p.storage();
        TreeWalk.of(p).walk(l1, l1Offset, new TreeWalk.FileVisitor(storage) {
            @Override
            protected boolean l1Entry(TreeWalk w, int index, long entry) throws IOException {
                if (w.l2() == 0) {
                    return false;
                }
                if (!w.l2InFile()) {
                    throw new CorruptImageException("L1 table", w.l1EntryAt(), "L2 table offset 0x" + Long.toHexString(w.l2()) + " invalid");
                }
                counts.add(w.l2() >>> bits);
                return true;
            }

            @Override
            protected void l2Entry(TreeWalk w) {
                // references outside the file are not counted (as QEMU's check does); reading
                // them fails later with a CorruptImageException
                long end = storage.length();
                if (w.kind() == TreeWalk.Kind.COMPRESSED) {
                    long start = w.compressedOffset() & ~(CompressedDescriptor.SECTOR - 1L);
                    if (start < end) {
                        addRange(counts, start, Math.min(w.compressedSectors() * CompressedDescriptor.SECTOR, end - start), bits);
                    }
                } else if (p.dataFile() == null) {
                    long host = w.host();
                    if (host != 0 && host < end) {
                        counts.add(host >>> bits);
                    }
                }
            }
        });
    }

    static void addRange(ClusterCounts counts, long offset, long length, int bits) {
        if (length <= 0) {
            return;
        }
        for (long c = offset >>> bits; c <= (offset + length - 1) >>> bits; c++) {
            counts.add(c);
        }
    }
}
