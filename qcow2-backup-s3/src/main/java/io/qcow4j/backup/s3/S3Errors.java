package io.qcow4j.backup.s3;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;

import io.qcow4j.backup.BackupException;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.core.exception.AbortedException;
import software.amazon.awssdk.core.exception.SdkException;

/** The SDK's exceptions as the I/O errors the backup library expects, each naming the object. */
final class S3Errors {
    private S3Errors() {
    }

    static IOException io(String what, SdkException e) {
        if (e instanceof AbortedException) {
            InterruptedIOException x = new InterruptedIOException(what + ": interrupted");
            x.initCause(e);
            return x;
        }
        if (e instanceof AwsServiceException ase) {
            int status = ase.statusCode();
            String code = ase.awsErrorDetails() == null ? null : ase.awsErrorDetails().errorCode();
            if ("NoSuchBucket".equals(code)) {
                return new BackupException(what + ": the bucket does not exist", e);
            }
            if (status == 404 || "NoSuchKey".equals(code)) {
                NoSuchFileException x = new NoSuchFileException(what, null, "the object is missing");
                x.initCause(e);
                return x;
            }
            if (status == 403) {
                AccessDeniedException x = new AccessDeniedException(what, null, "access denied (" + code + ")");
                x.initCause(e);
                return x;
            }
            String msg = ase.awsErrorDetails() != null && ase.awsErrorDetails().errorMessage() != null
                    ? ase.awsErrorDetails().errorMessage() : ase.getMessage();
            return new IOException(what + ": " + msg + " (HTTP " + status + (code != null ? ", " + code : "") + ")", e);
        }
        String msg = e.getMessage();
        if (msg != null && msg.contains("Unable to load credentials")) {
            msg = "no S3 credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)";
        }
        return new IOException(what + ": " + msg, e);
    }
}
