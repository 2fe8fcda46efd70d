package io.qcow4j.nbd.client;

import static io.qcow4j.nbd.protocol.Nbd.*;

import io.qcow4j.core.api.BlockStatus;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The client's BLOCK_STATUS side: {@link NbdClient#blockStatus} and {@link NbdClient#extents}
 * answered from the last reply ({@link StatusCache}) while the calls fall inside it, with a
 * request only when they leave it. Apart from the data path because it is the one part that
 * reads meta contexts; the client checks the arguments and holds its lock around each call.
 */
final class BlockStatusQueries {
    private final Transmission tx;
    private final DataPath data;
    private final List<String> contextNames;
    private final boolean oneExtentPerRequest;
    private final StatusCache cache = new StatusCache();

    BlockStatusQueries(Transmission tx, DataPath data, List<String> contextNames, boolean oneExtentPerRequest) {
        this.tx = tx;
        this.data = data;
        this.contextNames = contextNames;
        this.oneExtentPerRequest = oneExtentPerRequest;
    }

    /** Forgets the last reply: this client wrote to the export. */
    void clear() {
        cache.clear();
    }

    /** {@link NbdClient#blockStatus}, for {@code [offset, offset + max)} within the export. */
    BlockStatus blockStatus(long offset, long max) throws IOException {
        boolean base = contextNames.contains(CONTEXT_BASE_ALLOCATION);
        boolean depth = contextNames.contains(CONTEXT_ALLOCATION_DEPTH);
        if (!base && !depth) {
            return new BlockStatus(offset, max, true, false, true, 0, offset, false);
        }
        NbdClient.Extent a = base ? extentAt(CONTEXT_BASE_ALLOCATION, offset, max) : null;
        NbdClient.Extent d = depth ? extentAt(CONTEXT_ALLOCATION_DEPTH, offset, max) : null;
        long n = max;
        if (a != null) {
            n = Math.min(n, a.end() - offset);
        }
        if (d != null) {
            n = Math.min(n, d.end() - offset);
        }
        boolean zero = a != null && a.has(STATE_ZERO);
        boolean data = a == null || !a.has(STATE_HOLE);
        boolean allocated = data || zero;
        int layer = 0;
        if (d != null) {
            allocated = d.flags() != 0 || data;
            layer = d.flags() > 0 ? d.flags() - 1 : 0;
        }
        return new BlockStatus(offset, n, allocated, zero, data, layer, data || zero ? offset : -1, false);
    }

    /** {@link NbdClient#extents}, for {@code [offset, end)} within the export. */
    List<NbdClient.Extent> extents(String context, long offset, long end) throws IOException {
        extentAt(context, offset, end - offset);
        List<NbdClient.Extent> all = cache.get(context);
        List<NbdClient.Extent> out = new ArrayList<>();
        for (int i = cache.indexOf(context, offset); i < all.size() && all.get(i).offset() < end; i++) {
            NbdClient.Extent e = all.get(i);
            long s = Math.max(e.offset(), offset);
            out.add(new NbdClient.Extent(s, Math.min(e.end(), end) - s, e.flags()));
        }
        return out;
    }

    /** The cached extent of {@code context} holding {@code offset}, after a request if need be. */
    private NbdClient.Extent extentAt(String context, long offset, long max) throws IOException {
        NbdClient.Extent e = cache.find(context, offset);
        if (e == null) {
            fetchStatus(offset, max);
            e = cache.find(context, offset);
            if (e == null) {
                throw new IOException(tx.fail(new IOException("NBD protocol error: no extents for meta context "
                        + context + " at offset " + offset)));
            }
        }
        return e;
    }

    private void fetchStatus(long offset, long max) throws IOException {
        long start = data.alignDown(offset);
        long end = data.alignUp(offset + max);
        long length = Math.min(end - start, data.maxUnsized());
        int flags = oneExtentPerRequest ? CMD_FLAG_REQ_ONE : 0;
        Transmission.Request r = tx.submit(CMD_BLOCK_STATUS, flags, start, (int) length, null);
        tx.await(r);
        r.throwIfFailed("block status");
        cache.fill(r.extents);
    }
}
