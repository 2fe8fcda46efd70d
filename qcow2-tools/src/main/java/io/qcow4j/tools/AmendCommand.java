package io.qcow4j.tools;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.AmendException;
import io.qcow4j.core.api.AmendOptions;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.engine.ImageAmender;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code amend [--object OBJ] [--image-opts] [-p] [-q] [-f FMT] [-t CACHE] [--force] -o OPTS FILE},
 * as qemu-img amend: compat (0.10 and 1.1 both ways), refcount_bits, lazy_refcounts,
 * data_file and data_file_raw where QEMU lets them change, size; the backing file is
 * refused as QEMU refuses it. Checked in qemu-img's order with its messages; the work is
 * {@link ImageAmender}'s, which refuses before writing anything.
 */
final class AmendCommand {
    static final String NAME = "amend";
    private static final List<QemuGetopt.Long> LONG = List.of(
            new QemuGetopt.Long("help", false, "h"),
            new QemuGetopt.Long("object", true, "object"),
            new QemuGetopt.Long("image-opts", false, "image-opts"),
            new QemuGetopt.Long("force", false, "force"));
    private static final FormatOptions.Type STR = FormatOptions.Type.STRING;

    /** qcow2's amend options, in the order QEMU's amend walks them. */
    static final List<FormatOptions.Opt> QCOW2 = List.of(
            new FormatOptions.Opt("encrypt.state", STR, null, "Select new state of affected keyslots (active/inactive)"),
            new FormatOptions.Opt("encrypt.keyslot", FormatOptions.Type.NUMBER, null,
                    "Select a single keyslot to modify explicitly"),
            new FormatOptions.Opt("encrypt.old-secret", STR, null, "Select all keyslots that match this password"),
            new FormatOptions.Opt("encrypt.new-secret", STR, null,
                    "New secret to set in the matching keyslots. Empty string to erase"),
            new FormatOptions.Opt("encrypt.iter-time", FormatOptions.Type.NUMBER, null,
                    "Time to spend in PBKDF in milliseconds"),
            new FormatOptions.Opt("size", FormatOptions.Type.SIZE, null, "Virtual disk size"),
            new FormatOptions.Opt("compat", STR, null, "Compatibility level (v2 [0.10] or v3 [1.1])"),
            new FormatOptions.Opt("backing_file", STR, null, "File name of a base image"),
            new FormatOptions.Opt("backing_fmt", STR, null, "Image format of the base image"),
            new FormatOptions.Opt("data_file", STR, null, "File name of an external data file"),
            new FormatOptions.Opt("data_file_raw", FormatOptions.Type.BOOL, null,
                    "The external data file must stay valid as a raw image"),
            new FormatOptions.Opt("lazy_refcounts", FormatOptions.Type.BOOL, null, "Postpone refcount updates"),
            new FormatOptions.Opt("refcount_bits", FormatOptions.Type.NUMBER, null, "Width of a reference count entry in bits"));
    /** qcow2's options for create alone: given to amend, they get qemu-img's hint. */
    private static final Set<String> CREATE_ONLY_ENCRYPT = Set.of("encryption", "encrypt.format", "encrypt.key-secret",
            "encrypt.cipher-alg", "encrypt.cipher-mode", "encrypt.ivgen-alg", "encrypt.ivgen-hash-alg", "encrypt.hash-alg");

    private final List<String> optionLists = new ArrayList<>();
    private String format;
    private String cache = "writeback";
    private boolean progress;
    private boolean quiet;
    private boolean force;

    static int run(List<String> args, PrintWriter out, PrintWriter err) throws Exception {
        AmendCommand c = new AmendCommand();
        List<String> operands = QemuGetopt.handle(NAME, args, ":ho:f:t:pq", LONG, out, o -> c.option(o, out));
        if (c.optionLists.isEmpty()) {
            throw new CliException(Program.usage("Must specify options (-o)"));
        }
        QemuProgress bar = new QemuProgress(out, c.progress && !c.quiet, 1.0f);
        try {
            return c.amend(operands, out, bar);
        } finally {
            bar.end();
        }
    }

    private void option(QemuGetopt.Opt o, PrintWriter out) {
        String v = o.value();
        switch (o.key()) {
            case "o" -> {
                if (!OptionList.isValid(v)) {
                    throw new CliException("Invalid option list: " + v);
                }
                optionLists.add(v);
            }
            case "f" -> format = v;
            case "t" -> cache = v;
            case "p" -> progress = true;
            case "q" -> quiet = true;
            case "object" -> ObjectOption.accept(v, out);
            case "image-opts" -> ImageOpts.active(true);
            case "force" -> force = true; // only LUKS keyslot changes use it
            default -> throw new IllegalStateException(o.key());
        }
    }

    private int amend(List<String> operands, PrintWriter out, QemuProgress bar) throws IOException {
        OptionList opts = OptionList.parse(optionLists);
        if (format != null && opts.wantsHelp()) {
            return printHelp(format, out);
        }
        if (operands.size() != 1) {
            throw new CliException(Program.withoutHint("Expecting one image file name"));
        }
        if (!Images.CACHE_MODES.contains(cache)) {
            throw new CliException("Invalid cache option: " + cache);
        }
        String file = operands.get(0);
        BlockDevice dev = Images.open(file, format, true, true);
        try {
            if (format == null && !(dev instanceof Qcow2Image)) {
                CliWarnings.probedRaw(file);
            }
            String fmt = dev instanceof Qcow2Image ? Images.QCOW2 : Images.RAW;
            if (opts.wantsHelp()) {
                return printHelp(fmt, out);
            }
            if (!(dev instanceof Qcow2Image img)) {
                throw new CliException("Format driver '" + fmt + "' does not support option amendment");
            }
            Map<String, String> values = parse(opts);
            bar.print(0f, 0);
            if (img.info().encrypted() && values.keySet().stream().anyMatch(k -> k.startsWith("encrypt."))) {
                try {
                    keyslots(img, values, force);
                } catch (AmendException e) {
                    throw new CliException(e.getMessage(), 1, e);
                } finally {
                    bar.print(100f, 0);
                }
                return 0;
            }
            try {
                AmendOptions amend = amendOptions(img, values);
                dev = null; // amend closes it
                ImageAmender.amend(img.engine(), amend, bar::status);
            } catch (AmendException e) {
                throw new CliException(e.getMessage(), 1, e);
            } finally {
                bar.print(100f, 0);
            }
            return 0;
        } finally {
            Images.closeQuietly(dev);
        }
    }

    /** LUKS keyslots: encrypt.state, encrypt.keyslot, encrypt.new-secret / old-secret, encrypt.iter-time. */
    private static void keyslots(Qcow2Image img, Map<String, String> v, boolean force) throws IOException {
        String state = v.get("encrypt.state");
        if (state == null) {
            throw new AmendException("Parameter 'state' is missing");
        }
        if (!state.equals("active") && !state.equals("inactive")) {
            throw new AmendException("Parameter 'state' does not accept value '" + state + "'");
        }
        for (String k : v.keySet()) {
            if (!k.startsWith("encrypt.")) {
                // QEMU would apply both; qcow4j changes keyslots alone
                throw new AmendException("qcow4j amends the keyslots of an encrypted image alone (without '" + k + "')");
            }
        }
        int slot = -1;
        if (v.containsKey("encrypt.keyslot")) {
            long n = OptionList.parseNumber("encrypt.keyslot", v.get("encrypt.keyslot"));
            if (n < 0 || n > 7) {
                throw new AmendException("Invalid keyslot " + n + " specified, must be between 0 and 7");
            }
            slot = (int) n;
        }
        if (state.equals("active")) {
            if (v.containsKey("encrypt.old-secret")) {
                throw new AmendException("'old-secret' must not be given when activating keyslots");
            }
            if (!v.containsKey("encrypt.new-secret")) {
                throw new AmendException("'new-secret' is required to activate a keyslot");
            }
            byte[] secret = ObjectOption.secret(v.get("encrypt.new-secret"));
            long iterTime = v.containsKey("encrypt.iter-time") ? OptionList.parseNumber("encrypt.iter-time", v.get("encrypt.iter-time")) : 2000;
            img.luks().addKeyslot(secret, slot, (int) Math.max(1, Math.min(Integer.MAX_VALUE, iterTime)));
        } else {
            byte[] old = v.containsKey("encrypt.old-secret") ? ObjectOption.secret(v.get("encrypt.old-secret")) : null;
            img.luks().eraseKeyslots(slot, old, force);
        }
    }

    /** qemu-img amend's help: the format's amend options, or its refusal. */
    static int printHelp(String format, PrintWriter out) {
        if (!Formats.QEMU.contains(format) && !Formats.supported(format)) {
            throw new CliException("Unknown file format '" + format + "'");
        }
        if (!format.equals(Images.QCOW2)) {
            // of qemu's drivers only qcow2 and luks amend; qcow4j has no luks format driver
            throw new CliException("Format driver '" + format + "' does not support option amendment");
        }
        out.println("Amend options for '" + format + "':");
        FormatOptions.printSorted(out, QCOW2);
        out.flush();
        return 0;
    }

    /**
     * The options as qemu_opts_do_parse reads them, in order: unknown names and bad values
     * refused (with qemu-img's hint when the whole list would do for image creation).
     */
    private static Map<String, String> parse(OptionList opts) {
        for (Map.Entry<String, String> e : opts.items()) {
            String why = problem(QCOW2, e.getKey(), e.getValue());
            if (why != null) {
                boolean forCreate = opts.items().stream().allMatch(i -> problem(QCOW2, i.getKey(), i.getValue()) == null
                        || CREATE_ONLY_ENCRYPT.contains(i.getKey())
                        || problem(FormatOptions.QCOW2_DRIVER, i.getKey(), i.getValue()) == null);
                throw new CliException(forCreate ? why + "\nThis option is only supported for image creation" : why);
            }
        }
        return new LinkedHashMap<>(opts.values());
    }

    private static String problem(List<FormatOptions.Opt> table, String key, String value) {
        FormatOptions.Opt o = FormatOptions.find(table, key);
        if (o == null) {
            return "Invalid parameter '" + key + "'";
        }
        try {
            FormatOptions.typed(o, value);
            return null;
        } catch (CliException e) {
            return e.getMessage();
        }
    }

    /** QEMU's walk over the given options, each checked as it comes (in its table's order). */
    private static AmendOptions amendOptions(Qcow2Image img, Map<String, String> v) throws AmendException {
        AmendOptions o = AmendOptions.none();
        for (FormatOptions.Opt opt : QCOW2) {
            String value = v.get(opt.name());
            if (value == null) {
                continue;
            }
            switch (opt.name()) {
                case "size" -> o.size(OptionList.parseSize("size", value));
                case "compat" -> {
                    if (!List.of("0.10", "v2", "1.1", "v3").contains(value)) {
                        throw new AmendException("Unknown compatibility level " + value);
                    }
                    o.compat(value);
                }
                case "backing_file" -> o.backingFile(value);
                case "backing_fmt" -> o.backingFormat(value);
                case "data_file" -> {
                    if (img.info().dataFile() == null) {
                        throw new AmendException("data-file can only be set for images that use an external data file");
                    }
                    o.dataFile(value);
                }
                case "data_file_raw" -> {
                    boolean raw = OptionList.parseBool("data_file_raw", value);
                    if (raw && !img.info().dataFileRaw()) {
                        throw new AmendException("data-file-raw cannot be set on existing images");
                    }
                    o.dataFileRaw(raw);
                }
                case "lazy_refcounts" -> o.lazyRefcounts(OptionList.parseBool("lazy_refcounts", value));
                case "refcount_bits" -> {
                    int bits = (int) OptionList.parseNumber("refcount_bits", value); // an int in QEMU
                    if (bits <= 0 || bits > 64 || Integer.bitCount(bits) != 1) {
                        throw new AmendException("Refcount width must be a power of two and may not exceed 64 bits");
                    }
                    o.refcountBits(bits);
                }
                default -> throw new AmendException("Can't amend encryption options - encryption not present");
            }
        }
        return o;
    }
}
