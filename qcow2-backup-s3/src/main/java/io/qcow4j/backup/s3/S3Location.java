package io.qcow4j.backup.s3;

import io.qcow4j.backup.BackupException;

/** {@code s3://BUCKET/PREFIX}: a set's files are the objects {@code PREFIX/NAME} of the bucket. */
public record S3Location(String bucket, String prefix) {
    public static S3Location parse(String uri) throws BackupException {
        if (!uri.regionMatches(true, 0, "s3://", 0, 5)) {
            throw new BackupException("'" + uri + "' is not an s3://BUCKET/PREFIX location");
        }
        String rest = uri.substring(5);
        int slash = rest.indexOf('/');
        String bucket = slash < 0 ? rest : rest.substring(0, slash);
        String prefix = slash < 0 ? "" : rest.substring(slash + 1);
        while (prefix.endsWith("/")) {
            prefix = prefix.substring(0, prefix.length() - 1);
        }
        if (!bucket.matches("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")) {
            throw new BackupException("'" + uri + "': '" + bucket + "' is not a bucket name (3 to 63 of a-z 0-9 . -)");
        }
        return new S3Location(bucket, prefix);
    }

    /** The object key of a file of the set. */
    public String key(String file) {
        return prefix.isEmpty() ? file : prefix + "/" + file;
    }

    /** What listing the set's files asks for: everything under the prefix. */
    String listPrefix() {
        return prefix.isEmpty() ? "" : prefix + "/";
    }

    @Override
    public String toString() {
        return "s3://" + bucket + (prefix.isEmpty() ? "" : "/" + prefix);
    }
}
