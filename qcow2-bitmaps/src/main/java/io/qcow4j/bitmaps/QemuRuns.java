package io.qcow4j.bitmaps;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.Qcow2Info;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;

/**
 * Where QEMU's block status of a chain ends a run. Each qcow2 layer it consults answers for
 * one L2 table at most, and QEMU does not join the answers, so a run of, say, 512-byte
 * clusters never reaches past 32 KiB. The jobs that decide by the length of a run (commit
 * copies a piece shorter than a granule as data) cut ours the same way.
 */
final class QemuRuns {
    private QemuRuns() {
    }

    /**
     * The length of {@code st} (a status of {@code top} at its offset) up to the first L2
     * table boundary of the qcow2 layers at depths {@code from} to {@code to}.
     */
    static long length(Qcow2Image top, BlockStatus st, int from, int to) {
        long pos = st.offset();
        long n = st.length();
        BlockDevice d = top;
        for (int depth = 0; depth <= to && d instanceof Qcow2Image q; depth++) {
            if (depth >= from) {
                Qcow2Info info = q.info();
                long coverage = (long) info.clusterSize() * (info.clusterSize() / (info.extendedL2() ? 16 : 8));
                n = Math.min(n, (pos / coverage + 1) * coverage - pos);
            }
            d = q.chain().backing();
        }
        return n;
    }
}
