package io.qcow4j.core.check;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;

import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.RefcountBlock;

/**
 * Writes a new refcount structure from the counted references, the way qemu's repair
 * does, so the result has the same layout: refcount blocks and then the table go into the
 * first clusters nothing references (or past the end), the blocks describing the new
 * structure too; then one synced header write switches to it. Until that write the old
 * structure is in force; after it the old one is merely leaked, and freed by the caller.
 */
final class StructureRebuild {
    private final CheckRun run;
    private final ReferenceScan scan;
    private final CheckTally res;
    private final long entriesPerBlock;
    private long[] table = new long[0];

    private StructureRebuild(CheckRun run, ReferenceScan scan, CheckTally res) {
        this.run = run;
        this.scan = scan;
        this.res = res;
        this.entriesPerBlock = RefcountBlock.entriesPerBlock(run.bits, run.refcountOrder);
    }

    static void rebuild(CheckRun run, ReferenceScan scan, CheckTally res) throws CheckFailure {
        new StructureRebuild(run, scan, res).run();
    }

    private void run() throws CheckFailure {
        run.p.mapper().cache().clear();
        writeBlocks(0, scan.nb);
        long tableOffset;
        long tableClusters;
        boolean grown;
        do {
            tableClusters = (8L * table.length + run.cs - 1) >>> run.bits;
            long[] firstFree = {0};
            tableOffset = allocate(tableClusters, firstFree);
            long start = tableOffset >>> run.bits;
            long end = start + tableClusters;
            grown = writeBlocks(start, end);
            if (grown) {
                for (long c = start; c < end; c++) {
                    scan.counts.set(c, 0);
                }
            }
        } while (grown);

        ByteBuffer bytes = ByteBuffer.allocate(8 * table.length);
        bytes.asLongBuffer().put(table);
        if (!run.preWriteOverlapCheck(0, tableOffset, bytes.remaining())) {
            fail("ERROR writing reftable", CheckFailure.EIO);
        }
        try {
            run.write(tableOffset, bytes);
            run.flush();
        } catch (CheckFailure e) {
            fail("ERROR writing reftable", e.strerror());
        }
        ByteBuffer fields = ByteBuffer.allocate(12).putLong(tableOffset).putInt((int) tableClusters);
        fields.flip();
        try {
            run.write(Header.REFCOUNT_TABLE_OFFSET, fields);
            run.flush();
        } catch (CheckFailure e) {
            fail("ERROR setting reftable", e.strerror());
        }
        long newOffset = tableOffset;
        int newClusters = (int) tableClusters;
        run.p.engine().updateHeader(h -> h.withRefcountTable(newOffset, newClusters));
        try {
            run.p.refcounts().reload(tableOffset, (int) tableClusters);
        } catch (IOException e) {
            fail("ERROR setting reftable", CheckFailure.EIO);
        }
    }

    private void fail(String what, String strerror) throws CheckFailure {
        run.report(what + ": " + strerror);
        res.checkErrors++;
        throw new CheckFailure(strerror);
    }

    /**
     * Writes the blocks covering every counted cluster in [first, end), allocating those
     * not yet placed. True when the table had to grow (its clusters must be placed again).
     */
    private boolean writeBlocks(long first, long end) throws CheckFailure {
        boolean grown = false;
        long[] firstFree = {0};
        for (long c = first; c < end; c++) {
            if (scan.counts.get(c) == 0) {
                continue;
            }
            long index = c / entriesPerBlock;
            long blockStart = index * entriesPerBlock;
            long offset;
            if (index < table.length && table[(int) index] != 0) {
                offset = table[(int) index];
            } else {
                // never place a block among clusters whose block is already written
                firstFree[0] = Math.max(firstFree[0], blockStart);
                offset = allocate(1, firstFree);
                long cluster = offset >>> run.bits;
                if (cluster >= end) {
                    end = cluster + 1;
                }
                if (index >= table.length) {
                    long entries = ((index + 1) * 8 + run.cs - 1) / run.cs * run.cs / 8;
                    if (entries > Integer.MAX_VALUE - 8) {
                        fail("ERROR allocating reftable memory", CheckFailure.ENOMEM);
                    }
                    table = Arrays.copyOf(table, (int) entries);
                    grown = true;
                }
                table[(int) index] = offset;
            }
            if (!run.preWriteOverlapCheck(0, offset, run.cs)) {
                fail("ERROR writing refblock", CheckFailure.EIO);
            }
            try {
                run.write(offset, block(blockStart));
            } catch (CheckFailure e) {
                fail("ERROR writing refblock", e.strerror());
            }
            c = blockStart + entriesPerBlock - 1;
        }
        return grown;
    }

    /** The block describing clusters from {@code start}, from the counted references. */
    private ByteBuffer block(long start) {
        long[] words = new long[run.cs / 8];
        for (long i = 0; i < entriesPerBlock; i++) {
            long v = scan.counts.get(start + i);
            if (v != 0) {
                int w = RefcountBlock.wordOffset(i, run.refcountOrder) / 8;
                words[w] = RefcountBlock.set(words[w], i, run.refcountOrder, v);
            }
        }
        ByteBuffer b = ByteBuffer.allocate(run.cs);
        b.asLongBuffer().put(words);
        return b;
    }

    /**
     * First run of {@code count} clusters nothing references, searching from
     * {@code firstFree[0]} (moved to the first free cluster seen); past the end when none.
     * The clusters are counted as used.
     */
    private long allocate(long count, long[] firstFree) throws CheckFailure {
        long c = firstFree[0];
        long run0 = 0;
        boolean firstGap = true;
        for (; c < scan.nb && run0 < count; c++) {
            if (scan.counts.get(c) == 0) {
                run0++;
                if (firstGap) {
                    firstFree[0] = c;
                    firstGap = false;
                }
            } else {
                run0 = 0;
            }
        }
        if (run0 < count) {
            scan.nb = c + count - run0;
        }
        c -= run0;
        if (c + count > Integer.MAX_VALUE) {
            fail("ERROR allocating refblock", CheckFailure.ENOMEM);
        }
        for (long i = 0; i < count; i++) {
            scan.counts.set(c + i, 1);
        }
        return c << run.bits;
    }
}
