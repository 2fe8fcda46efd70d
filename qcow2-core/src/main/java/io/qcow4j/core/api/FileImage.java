package io.qcow4j.core.api;

import java.io.IOException;

/**
 * A disk image kept in a file of its own ({@link BlockDevice#path()}): a raw file or a qcow2
 * image, not a view or a remote export. What a caller may ask of such a device to take a
 * faster path, instead of asking which class it is: its writes are positional I/O on that
 * file (the kernel copies a write's bytes as they are, unless the image encrypts them), and
 * it says where guest bytes lie in the file, so that a caller may read them there itself
 * (convert maps them, the NBD server sends them with sendfile).
 */
public interface FileImage extends BlockDevice {

    /** The unit the image allocates and maps the disk in (a qcow2 cluster), or 0 for none (a raw file). */
    int clusterSize();

    /** The format's version where it has one (qcow2: 2 or 3; zero clusters need 3), else 0. */
    int version();

    /** Whether the guest data is encrypted in the file (it is then read and written in Java). */
    boolean isEncrypted();

    /** The external data file holding the guest data, as the image names it, or null: the data is in {@link #path()}. */
    String dataFile();

    /**
     * Where guest {@code [offset, offset + length)} lies as one run, as it is, in the file
     * {@link #path()} names, for a caller that reads it from the file itself; -1 when it
     * does not (another kind of cluster, not one run, an external data file, encryption, a
     * qcow2 image open for writing). A raw file answers {@code offset}: a caller checks the
     * file's length (bytes past it read as zeros, which only {@link #read} gives).
     */
    long hostRun(long offset, long length) throws IOException;
}
