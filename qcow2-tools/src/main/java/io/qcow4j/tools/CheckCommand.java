package io.qcow4j.tools;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.check.CheckResult;
import io.qcow4j.core.check.ImageChecker;
import io.qcow4j.core.check.Repair;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code check [-f FMT] [--output=human|json] [-r leaks|all] [-T CACHE] [-q] [-U] [-p] FILE}, as
 * qemu-img check: the same report, the same repairs, the same exit codes (0 clean, 1 check not
 * completed, 2 corruptions, 3 leaks only, 63 a format without checks). The image opens
 * with its backing chain, as in qemu-img. {@code -p} (qcow4j's own: qemu-img check has
 * none) draws qemu-img's progress line on stdout before the report. The command line is
 * read as qemu-img reads it ({@link QemuGetopt}: -r checked as it comes).
 */
final class CheckCommand {
    static final String NAME = "check";
    /** -p: the checker reports fractions; the bar counts in these steps. */
    private static final long PROGRESS_STEPS = 1_000_000;
    private static final List<QemuGetopt.Long> LONG = List.of(
            new QemuGetopt.Long("help", false, "h"),
            new QemuGetopt.Long("format", true, "f"),
            new QemuGetopt.Long("repair", true, "r"),
            new QemuGetopt.Long("output", true, "output"),
            new QemuGetopt.Long("object", true, "object"),
            new QemuGetopt.Long("image-opts", false, "image-opts"),
            new QemuGetopt.Long("force-share", false, "U"));

    private String format;
    private String output = "human";
    private Repair mode;
    private String cache = "writeback";
    private boolean quiet;
    private boolean forceShare;
    private boolean progress;
    private String file;
    private PrintWriter out;
    private PrintWriter err;

    /** Runs {@code check ARGS}; the exit code. */
    static int run(List<String> args, PrintWriter out, PrintWriter err) throws Exception {
        CheckCommand c = new CheckCommand();
        c.out = out;
        c.err = err;
        List<String> files = QemuGetopt.handle(NAME, args, ":hf:r:T:qUp", LONG, out, o -> c.option(o, out));
        if (files.size() != 1) {
            throw new CliException(Program.usage("Expecting one image file name"));
        }
        c.file = files.get(0);
        return c.check();
    }

    private void option(QemuGetopt.Opt o, PrintWriter out) {
        String v = o.value();
        switch (o.key()) {
            case "f" -> format = v;
            case "r" -> mode = switch (v) {
                case "leaks" -> Repair.LEAKS;
                case "all" -> Repair.ALL;
                default -> throw new CliException(Program.usage(
                        "Unknown option value for -r (expecting 'leaks' or 'all'): " + v));
            };
            case "output" -> output = v;
            case "T" -> cache = v;
            case "q" -> quiet = true;
            case "U" -> forceShare = true;
            case "p" -> progress = true;
            case "object" -> ObjectOption.accept(v, out);
            case "image-opts" -> ImageOpts.active(true);
            default -> throw new IllegalStateException(o.key());
        }
    }

    private int check() throws IOException {
        boolean json = InfoCommand.checkOutputFormat(output);
        if (!Images.CACHE_MODES.contains(cache)) {
            throw new CliException("Invalid source cache option: " + cache);
        }
        String[] fmt = {format};
        String given = file; // qemu-img's JSON report names the image as given (an option list too)
        byte[] secret;
        try {
            secret = ImageOpts.secret(file);
        } catch (CliException e) {
            throw new CliException("Could not open '" + file + "': " + e.getMessage(), e.exitCode(), e);
        }
        file = ImageOpts.resolve(file, fmt); // json:{...}, or an option list under --image-opts
        format = fmt[0];
        Images.checkFormat(format, "Could not open '" + file + "': ");
        Path path = Cwd.path(file);
        if (format == null && Files.isRegularFile(path) && Images.probe(path).equals(Images.RAW)) {
            throw new CliException("This image format does not support checks", 63);
        }
        if (Images.RAW.equals(format)) {
            throw new CliException("This image format does not support checks", 63);
        }
        Qcow2Image image;
        try {
            if (!Files.exists(path)) {
                throw new java.nio.file.NoSuchFileException(file);
            }
            if (!Images.probe(path).equals(Images.QCOW2)) {
                throw new CliException("Could not open '" + file + "': Image is not in qcow2 format");
            }
            // with its backing chain, as qemu-img check: a missing or locked backing file fails it
            OpenOptions o = (mode == null ? OpenOptions.readOnly() : OpenOptions.readWrite()).checkMode(true)
                    .forceShare(forceShare).warnings(CliWarnings.sink()).encryptionSecret(secret);
            image = Qcow2Image.open(path, o);
        } catch (CliException e) {
            throw Images.namedByOptions(e, given, file);
        } catch (IOException | RuntimeException e) {
            throw Images.namedByOptions(new CliException("Could not open '" + file + "': " + Images.reason(e), 1, e), given, file);
        }
        CheckResult result;
        Progress bar = new Progress(out, progress && !quiet, PROGRESS_STEPS);
        try (Qcow2Image img = image) {
            java.util.function.DoubleConsumer shown = f -> bar.update((long) (f * PROGRESS_STEPS));
            ReportLines lines = new ReportLines(err);
            try {
                result = mode == null
                        ? ImageChecker.check(img.engine(), lines, shown)
                        : ImageChecker.repair(img.engine(), mode, lines, shown);
            } finally {
                err.flush();
            }
        }
        bar.finish();
        if (result.completed() && !quiet) {
            if (json) {
                String doc = result.json(given);
                out.print(doc.endsWith("\n") ? doc : doc + "\n");
            } else {
                for (String line : result.humanLines()) {
                    out.println(line);
                }
            }
        }
        out.flush();
        return result.exitCode();
    }

    /**
     * The report's stderr lines through one reused char array: println copies each line into a
     * new one, and a damaged table's report has hundreds of thousands (qemu-img prints them all).
     */
    private static final class ReportLines implements java.util.function.Consumer<CheckResult.Line> {
        private static final String NL = System.lineSeparator();
        private final PrintWriter err;
        private char[] buf = new char[256];

        ReportLines(PrintWriter err) {
            this.err = err;
        }

        @Override
        public void accept(CheckResult.Line line) {
            String s = Cwd.asTyped(line.render("qcow4j"));
            int n = s.length() + NL.length();
            if (n > buf.length) {
                buf = new char[Math.max(n, 2 * buf.length)];
            }
            s.getChars(0, s.length(), buf, 0);
            NL.getChars(0, NL.length(), buf, s.length());
            err.write(buf, 0, n);
        }
    }
}
