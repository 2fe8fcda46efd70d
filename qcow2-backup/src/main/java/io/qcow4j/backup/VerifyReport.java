package io.qcow4j.backup;

import java.util.List;

/** What verify found: one entry per backup file, and whether the whole set is good. */
public record VerifyReport(List<FileReport> files, String note) {
    /** A file of the set: ok, or damaged/missing with the first bad offset (-1: none) and why. */
    public record FileReport(String file, String status, long offset, String reason) {
        public boolean ok() {
            return status.equals("ok");
        }
    }

    public boolean good() {
        return files.stream().allMatch(FileReport::ok);
    }
}
