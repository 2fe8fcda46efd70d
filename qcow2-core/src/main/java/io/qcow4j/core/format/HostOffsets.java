package io.qcow4j.core.format;

import io.qcow4j.core.api.CorruptImageException;

/**
 * The checks every host offset read from an image passes before anything is read or
 * written there, in one place: a cluster reference is aligned to the cluster and past the
 * header (so not 0, not negative); a structure lies inside the file, its end computed with
 * {@link Math#addExact} so that a hostile offset near 2^63 cannot wrap around into range.
 * Each caller keeps its own words for the failure (they are compared with qemu-img's).
 */
public final class HostOffsets {
    /** The message for a refused offset, built only when it is refused. */
    @FunctionalInterface
    public interface Why {
        String of(long offset);
    }

    private HostOffsets() {
    }

    /** {@code offset} is a multiple of {@code clusterSize} (a power of two). */
    public static boolean aligned(long offset, long clusterSize) {
        return (offset & (clusterSize - 1)) == 0;
    }

    /** A cluster's offset: aligned and past the header cluster (0 and negatives are refused). */
    public static boolean isCluster(long offset, long clusterSize) {
        return aligned(offset, clusterSize) && offset >= clusterSize;
    }

    /** {@code [offset, offset+length)} lies inside a file of {@code fileLength} bytes, without overflow. */
    public static boolean fits(long offset, long length, long fileLength) {
        if (offset < 0 || length < 0) {
            return false;
        }
        try {
            return Math.addExact(offset, length) <= fileLength;
        } catch (ArithmeticException e) {
            return false;
        }
    }

    /** A whole cluster inside the file: {@link #isCluster} and {@link #fits} for one cluster. */
    public static boolean clusterInFile(long offset, long clusterSize, long fileLength) {
        return isCluster(offset, clusterSize) && fits(offset, clusterSize, fileLength);
    }

    /** A cluster that starts inside the file (its end may not: an image cut short reads zeros there). */
    public static boolean clusterStartsInFile(long offset, long clusterSize, long fileLength) {
        return isCluster(offset, clusterSize) && offset < fileLength;
    }

    /** Past the header and starting inside the file, not necessarily aligned (compressed data). */
    public static boolean startsInFile(long offset, long clusterSize, long fileLength) {
        return offset >= clusterSize && offset < fileLength;
    }

    /** {@link #isCluster}, or the failure. */
    public static long requireCluster(long offset, long clusterSize, String structure, long at, Why why)
            throws CorruptImageException {
        return require(isCluster(offset, clusterSize), offset, structure, at, why);
    }

    /** {@link #clusterInFile}, or the failure. */
    public static long requireClusterInFile(long offset, long clusterSize, long fileLength, String structure, long at,
                                            Why why) throws CorruptImageException {
        return require(clusterInFile(offset, clusterSize, fileLength), offset, structure, at, why);
    }

    /** {@link #clusterStartsInFile}, or the failure. */
    public static long requireClusterStartsInFile(long offset, long clusterSize, long fileLength, String structure,
                                                  long at, Why why) throws CorruptImageException {
        return require(clusterStartsInFile(offset, clusterSize, fileLength), offset, structure, at, why);
    }

    /** {@link #startsInFile}, or the failure. */
    public static long requireStartsInFile(long offset, long clusterSize, long fileLength, String structure, long at,
                                           Why why) throws CorruptImageException {
        return require(startsInFile(offset, clusterSize, fileLength), offset, structure, at, why);
    }

    /** {@link #fits}, or the failure. */
    public static long requireFits(long offset, long length, long fileLength, String structure, long at, Why why)
            throws CorruptImageException {
        return require(fits(offset, length, fileLength), offset, structure, at, why);
    }

    /** {@code offset} when {@code ok}, else the failure of {@code structure} at {@code at}. */
    private static long require(boolean ok, long offset, String structure, long at, Why why) throws CorruptImageException {
        if (!ok) {
            throw new CorruptImageException(structure, at, why.of(offset));
        }
        return offset;
    }
}
