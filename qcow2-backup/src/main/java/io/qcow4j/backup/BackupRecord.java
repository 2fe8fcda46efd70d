package io.qcow4j.backup;

import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;

/** One completed backup of a set, as the manifest records it. */
@JsonNaming(PropertyNamingStrategies.KebabCaseStrategy.class)
@JsonInclude(JsonInclude.Include.NON_NULL)
public final class BackupRecord {
    /** Order in the set, from 1. */
    public int seq;
    /** full, inc, diff or copy. */
    public String level;
    /** qcow2 or stream. */
    public String format;
    /** LZ4 frames (stream only). */
    public boolean compressed;
    /** The file, in the set's directory. */
    public String file;
    /** The checkpoint this backup is the point of (null for diff and copy). */
    public String checkpoint;
    /** The checkpoint the changes are counted from (inc, diff). */
    public String since;
    /** The bitmap the changes were read from, when not a checkpoint of ours. */
    public String bitmap;
    /** The file this one builds on (null for full and copy). */
    public String parent;
    public long virtualSize;
    /** When the backup started (ISO 8601). */
    public String time;
    public long dataBytes;
    public long zeroBytes;
    public long bytesWritten;
    /** Files folded into this one by a prune. */
    public List<String> folded;
    /** CRC-32C of each chunkSize bytes of the file: verify names the damaged offset. */
    public long chunkSize;
    public List<Long> chunkCrc32c = new ArrayList<>();
    /** The guest ranges this file holds, with the CRC-32C of each data range. */
    public List<ExtentRecord> extents = new ArrayList<>();

    /** A point in time a restore can reach: named by its checkpoint, else by its file. */
    public String pointName() {
        return checkpoint != null ? checkpoint : file;
    }
}
