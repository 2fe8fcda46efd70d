package io.qcow4j.backup;

import java.nio.file.Path;

/**
 * A child JVM that backs IMAGE up into DIR (auto level, FORMAT) and stops half-way: it prints
 * "HALF" once the first piece is written and sleeps, for its parent to SIGKILL it.
 */
public final class BackupChild {
    private BackupChild() {
    }

    public static void main(String[] args) throws Exception {
        Path img = Path.of(args[0]);
        Path dir = Path.of(args[1]);
        Progress p = new Progress((done, total) -> {
            if (done > 0 && done < total) {
                System.out.println("HALF");
                System.out.flush();
                try {
                    Thread.sleep(60_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        });
        Sets.backup(img, dir, BackupOptions.defaults().format(Format.parse(args[2])).progress(p));
        System.out.println("DONE");
    }
}
