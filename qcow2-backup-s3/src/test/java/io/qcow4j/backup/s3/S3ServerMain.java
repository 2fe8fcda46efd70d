package io.qcow4j.backup.s3;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * S3Proxy for scripts (jmh/s3-backup-bench.sh): {@code S3ServerMain DIR [BUCKET]} serves DIR
 * on 127.0.0.1, creates BUCKET, prints {@code ENDPOINT http://127.0.0.1:PORT}, and runs until
 * its standard input closes. Its key pair is {@link S3Server#ACCESS} / {@link S3Server#SECRET}.
 */
public final class S3ServerMain {
    private S3ServerMain() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Files.createDirectories(Path.of(args[0]));
        try (S3Server server = S3Server.start(dir)) {
            if (args.length > 1) {
                try (var s3 = server.client()) {
                    if (s3.listBuckets().buckets().stream().noneMatch(b -> b.name().equals(args[1]))) {
                        s3.createBucket(r -> r.bucket(args[1]));
                    }
                }
            }
            System.out.println("ENDPOINT " + server.endpoint);
            System.out.flush();
            while (System.in.read() >= 0) {
                // until the parent closes our input
            }
        }
    }
}
