package io.qcow4j.tools;

import io.qcow4j.core.storage.ImageLock;
import io.qcow4j.tools.dump.DumpException;
import io.qcow4j.tools.dump.DumpText;
import io.qcow4j.tools.dump.ImageFile;
import io.qcow4j.tools.dump.Qcow2Dump;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code dump [--output=human|json] [-U] FILE [header|extensions|l1|l2 N|refcounts|bitmaps|snapshots]}
 * (qcow4j's own): the raw qcow2 structures with their file offsets, fields named as
 * qcow2.txt names them. The file is read by position, not opened as an image, so damaged
 * images can be looked at; every offset and size is checked first (see {@link Qcow2Dump}).
 *
 * <p>Output is one object keyed by section: without a section the overview (header,
 * extensions, and summaries of L1, refcounts, bitmaps and snapshots); with a section
 * that section in full ({@code l2 N}: the L2 table of L1 entry N). In the overview a
 * section that cannot be read shows {@code "error"}; the command then also prints that
 * error and exits 1. A requested section that cannot be read is only the error line.
 */
@Command(name = "dump", mixinStandardHelpOptions = true,
        description = "Show the raw qcow2 structures with their file offsets (qcow4j's own).")
final class DumpCommand implements Callable<Integer> {
    private static final String SECTIONS = "header, extensions, l1, l2 N, refcounts, bitmaps, snapshots";

    @Spec
    CommandSpec spec;

    @Option(names = "--output", paramLabel = "FMT", description = "human (default) or json")
    String output = "human";

    @Option(names = {"-U", "--force-share"}, description = "open even an image in use (take no locks)")
    boolean forceShare;

    @Parameters(index = "0", paramLabel = "FILE")
    String file;

    @Parameters(index = "1", arity = "0..1", paramLabel = "SECTION", description = SECTIONS)
    String section;

    @Parameters(index = "2", arity = "0..1", paramLabel = "N", description = "L1 index, for l2")
    String number;

    /** One section's content, or the reason it could not be read. */
    private interface Section {
        Object build() throws DumpException, IOException;
    }

    @Override
    public Integer call() throws IOException {
        boolean json = InfoCommand.checkOutputFormat(output);
        if (number != null && !"l2".equals(section)) {
            throw new CliException("Unexpected argument '" + number + "': only l2 takes a number");
        }
        Path path = Cwd.path(file);
        if (Files.isDirectory(path)) {
            throw new CliException("Could not open '" + file + "': 'file' driver requires '" + file + "' to be a regular file");
        }
        ImageLock lock;
        ImageFile f;
        try {
            // as qemu-img info: an image another process writes is refused unless -U
            lock = forceShare ? null : ImageLock.qcow2(path, true);
        } catch (IOException e) {
            throw new CliException("Could not open '" + file + "': " + Images.reason(e), 1, e);
        }
        try {
            f = ImageFile.open(path);
        } catch (IOException e) {
            Images.closeQuietly(lock);
            throw new CliException("Could not open '" + file + "': " + Images.reason(e), 1, e);
        }
        try (f; lock) {
            Qcow2Dump dump;
            try {
                dump = Qcow2Dump.open(f);
            } catch (DumpException e) {
                throw new CliException("Could not dump '" + file + "': " + e.getMessage(), 1, e);
            }
            Map<String, Object> doc = new LinkedHashMap<>();
            String error = section == null ? overview(dump, doc) : single(dump, doc);
            PrintWriter out = spec.commandLine().getOut();
            out.println(json ? QemuJson.pretty(doc) : DumpText.render(doc).stripTrailing());
            if (error != null) {
                throw new CliException("Could not dump '" + file + "': " + error);
            }
        }
        return 0;
    }

    /** Everything, with summaries; returns the first error (its section shows it too). */
    private static String overview(Qcow2Dump dump, Map<String, Object> doc) throws IOException {
        String first = null;
        first = put(doc, "header", dump::header, first);
        first = put(doc, "extensions", dump::extensions, first);
        first = put(doc, "l1", () -> dump.l1(false), first);
        first = put(doc, "refcounts", () -> dump.refcounts(false), first);
        first = put(doc, "bitmaps", () -> dump.bitmaps(false), first);
        first = put(doc, "snapshots", dump::snapshots, first);
        return first;
    }

    private static String put(Map<String, Object> doc, String key, Section s, String first) throws IOException {
        try {
            doc.put(key, s.build());
            return first;
        } catch (DumpException e) {
            doc.put(key, Map.of("error", e.getMessage()));
            return first != null ? first : e.getMessage();
        }
    }

    private String single(Qcow2Dump dump, Map<String, Object> doc) throws IOException {
        try {
            switch (section) {
                case "header" -> doc.put("header", dump.header());
                case "extensions" -> doc.put("extensions", dump.extensions());
                case "l1" -> doc.put("l1", dump.l1(true));
                case "l2" -> doc.put("l2", dump.l2(l1Index()));
                case "refcounts" -> doc.put("refcounts", dump.refcounts(true));
                case "bitmaps" -> doc.put("bitmaps", dump.bitmaps(true));
                case "snapshots" -> doc.put("snapshots", dump.snapshots());
                default -> throw new CliException("Unknown section '" + section + "' (sections: " + SECTIONS + ")");
            }
        } catch (DumpException e) {
            throw new CliException("Could not dump '" + file + "': " + e.getMessage(), 1, e);
        }
        return null;
    }

    private long l1Index() {
        if (number == null) {
            throw new CliException("l2 needs the index of an L1 entry: dump FILE l2 N");
        }
        try {
            return number.startsWith("0x") || number.startsWith("0X")
                    ? Long.parseLong(number.substring(2), 16) : Long.parseLong(number);
        } catch (NumberFormatException e) {
            throw new CliException("Invalid L1 index '" + number + "'");
        }
    }
}
