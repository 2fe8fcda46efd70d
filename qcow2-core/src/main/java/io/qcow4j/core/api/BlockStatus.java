package io.qcow4j.core.api;

/**
 * What backs a run of the virtual disk, as qemu-img map reports it.
 *
 * @param offset     guest offset of the run
 * @param length     length of the run in bytes
 * @param allocated  some layer of the chain (depth {@code depth}) answers for the run
 * @param zero       the run reads as zeros
 * @param data       the run's bytes come from a host file (not a zero flag, not a hole)
 * @param depth      layer that answered: 0 is the image itself, 1 its backing file, ...
 * @param hostOffset offset in the host file of that layer, or -1 (compressed, zero, unallocated)
 * @param compressed the run is one compressed cluster
 */
public record BlockStatus(long offset, long length, boolean allocated, boolean zero, boolean data,
                          int depth, long hostOffset, boolean compressed) {

    /** Same status, shifted one layer down the chain. */
    public BlockStatus deeper() {
        return new BlockStatus(offset, length, allocated, zero, data, depth + 1, hostOffset, compressed);
    }

    public BlockStatus withRange(long newOffset, long newLength) {
        long host = hostOffset < 0 ? -1 : hostOffset + (newOffset - offset);
        return new BlockStatus(newOffset, newLength, allocated, zero, data, depth, host, compressed);
    }
}
