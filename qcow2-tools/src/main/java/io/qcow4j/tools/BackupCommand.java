package io.qcow4j.tools;

import io.qcow4j.backup.BackupOptions;
import io.qcow4j.backup.BackupRecord;
import io.qcow4j.backup.BackupResult;
import io.qcow4j.backup.BackupSet;
import io.qcow4j.backup.BackupSource;
import io.qcow4j.backup.Format;
import io.qcow4j.backup.ImageSource;
import io.qcow4j.backup.Level;
import io.qcow4j.backup.Manifest;
import io.qcow4j.backup.NbdSource;
import io.qcow4j.nbd.protocol.Nbd;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code backup [--level full|inc|diff|copy|auto] [--checkpoint NAME] [--bitmap NAME]
 * [--format qcow2|stream] [-c] [-p] [--output=json] SOURCE DIR}, and {@code backup --list
 * [--output=json] DIR} (beyond qemu-img): a backup of an image file or an NBD export into the
 * backup set in DIR (see {@link BackupSet}). For an image, checkpoints are persistent bitmaps
 * of SOURCE, as {@code checkpoint} keeps them; for an NBD export ({@code nbd+unix:///EXPORT?socket=PATH},
 * {@code nbd://HOST:PORT/EXPORT}) they belong to whoever runs the VM: inc and diff read the
 * changes from {@code --bitmap NAME} (the export's qemu:dirty-bitmap:NAME), {@code --checkpoint}
 * only records a name. {@code --output=json} prints one object: level (after any
 * fallback), file, checkpoint, since, data-bytes, zero-bytes, bytes-written; a fallback of
 * {@code auto} to a full backup is said on stderr.
 */
@Command(name = "backup", mixinStandardHelpOptions = true,
        description = "Back an image or an NBD export up into a backup set (full, incremental, differential), or list the set.")
final class BackupCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--level", paramLabel = "LEVEL", description = "full, inc, diff, copy or auto (default)")
    String level = "auto";

    @Option(names = "--checkpoint", paramLabel = "NAME", description = "name of the new checkpoint (default qcow4j.N; for an NBD source, the VM owner's, recorded)")
    String checkpoint;

    @Option(names = "--bitmap", paramLabel = "NAME", description = "read the changes from this bitmap (an NBD export's qemu:dirty-bitmap:NAME, or an image bitmap the set does not manage)")
    String bitmap;

    @Option(names = "--format", paramLabel = "FMT", description = "qcow2 (default) or stream (virtnbdbackup's sparse stream)")
    String format;

    @Option(names = "-c", description = "LZ4-compressed stream")
    boolean compress;

    @Option(names = "-p", description = "show progress")
    boolean progress;

    @Option(names = "--output", paramLabel = "FMT", description = "human (default) or json")
    String output = "human";

    @Option(names = "--list", description = "list the backups of the set in DIR")
    boolean list;

    @Parameters(paramLabel = "SOURCE DIR", arity = "1..2")
    List<String> args;

    @Override
    public Integer call() throws IOException {
        boolean json = InfoCommand.checkOutputFormat(output);
        if (list) {
            if (args.size() != 1) {
                throw new CommandLine.ParameterException(spec.commandLine(), "Expecting one argument: DIR");
            }
            return list(args.get(0), json);
        }
        if (args.size() != 2) {
            throw new CommandLine.ParameterException(spec.commandLine(), "Expecting two arguments: SOURCE DIR");
        }
        String source = args.get(0);
        String dir = args.get(1);
        BackupOptions o = options();
        Path dirPath = Cwd.path(dir);
        PrintWriter err = spec.commandLine().getErr();
        String what = "Could not back up '" + source + "'";
        BackupResult r = BackupCli.run(what, json ? err : spec.commandLine().getOut(), progress, p -> {
            o.progress(p);
            BackupSource src;
            if (NbdImages.isNbd(source)) {
                src = NbdSource.of(bitmap == null ? NbdImages.open(source, null, false, Nbd.CONTEXT_BASE_ALLOCATION)
                        : NbdImages.open(source, null, false, Nbd.CONTEXT_BASE_ALLOCATION, NbdImages.bitmapContext(bitmap)),
                        bitmap);
            } else {
                try {
                    src = ImageSource.open(Cwd.path(source), BackupSet.changesCheckpoints(dirPath, o), CliWarnings.to(err));
                } catch (IOException e) {
                    throw new CliException("Could not open '" + source + "': " + Images.reason(e), 1, e);
                }
            }
            try (src) {
                return BackupSet.backup(dirPath, src, o);
            }
        });
        if (r.note() != null) {
            err.println("qcow4j: note: " + r.note());
        }
        String file = dir.endsWith("/") ? dir + r.file().getFileName() : dir + "/" + r.file().getFileName();
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("level", r.level().label());
            m.put("file", file);
            m.put("checkpoint", r.checkpoint());
            m.put("since", r.since());
            m.put("data-bytes", r.dataBytes());
            m.put("zero-bytes", r.zeroBytes());
            m.put("bytes-written", r.bytesWritten());
            out.println(QemuJson.pretty(m));
        } else {
            out.println(capitalized(r.level().label()) + " backup written to '" + file + "'"
                    + (r.checkpoint() != null ? ", checkpoint " + r.checkpoint() : "")
                    + (r.since() != null ? ", changes since " + r.since() : "")
                    + ": " + BackupCli.size(r.dataBytes()) + " of data, " + BackupCli.size(r.zeroBytes()) + " of zeros, "
                    + BackupCli.size(r.bytesWritten()) + " written");
        }
        return 0;
    }

    private BackupOptions options() {
        BackupOptions o = BackupOptions.defaults().checkpoint(checkpoint).bitmap(bitmap).compress(compress);
        try {
            o.level(Level.parse(level));
            if (format != null) {
                o.format(Format.parse(format));
            }
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
        }
        return o;
    }

    private static String capitalized(String s) {
        return Character.toUpperCase(s.charAt(0)) + s.substring(1);
    }

    private int list(String dir, boolean json) {
        Manifest m;
        try {
            m = BackupSet.manifest(Cwd.path(dir));
        } catch (IOException e) {
            throw new CliException("Could not list '" + dir + "': " + Images.reason(e), 1, e);
        }
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            List<Object> doc = new ArrayList<>();
            for (BackupRecord b : m.backups) {
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("seq", b.seq);
                e.put("level", b.level);
                e.put("format", b.format);
                e.put("file", b.file);
                e.put("checkpoint", b.checkpoint);
                e.put("since", b.since);
                e.put("parent", b.parent);
                e.put("virtual-size", b.virtualSize);
                e.put("time", b.time);
                e.put("data-bytes", b.dataBytes);
                e.put("zero-bytes", b.zeroBytes);
                e.put("bytes-written", b.bytesWritten);
                doc.add(e);
            }
            out.println(QemuJson.pretty(doc));
            return 0;
        }
        out.printf("%-4s %-5s %-16s %-16s %10s %10s  %-25s %s%n", "SEQ", "LEVEL", "CHECKPOINT", "SINCE", "DISK", "WRITTEN",
                "TIME", "FILE");
        for (BackupRecord b : m.backups) {
            out.printf("%-4d %-5s %-16s %-16s %10s %10s  %-25s %s%n", b.seq, b.level, dash(b.checkpoint), dash(b.since),
                    BackupCli.size(b.virtualSize), BackupCli.size(b.bytesWritten), b.time, b.file);
        }
        return 0;
    }

    private static String dash(String s) {
        return s == null ? "-" : s;
    }
}
