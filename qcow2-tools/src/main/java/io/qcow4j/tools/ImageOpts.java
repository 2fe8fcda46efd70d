package io.qcow4j.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An image named by its block options rather than a file name: {@code json:{...}} anywhere
 * a file name goes, or the {@code key=value,...} list a command reads under
 * {@code --image-opts}. qcow4j reads what qemu-img reads of them for its three drivers
 * (qcow2 and raw over the file protocol, or the file protocol alone): the driver, the
 * file name, force-share and read-only; the options that only tune QEMU's caches and I/O
 * are accepted and have no effect. Unknown options and drivers are refused in qemu-img's
 * words.
 */
final class ImageOpts {
    /** What to open: the file, its format (null: probe), whether the top driver was "file" and -U was asked for. */
    record Spec(String filename, String format, boolean forceShare, String keySecret) {
        Spec(String filename, String format, boolean forceShare) {
            this(filename, format, forceShare, null);
        }
    }

    private static final ThreadLocal<Boolean> ACTIVE = new ThreadLocal<>();
    /** Options of every block node, and the qcow2 and raw drivers' own: accepted, without effect in qcow4j. */
    private static final Set<String> NODE = Set.of("driver", "node-name", "read-only", "auto-read-only", "force-share",
            "discard", "detect-zeroes", "cache.direct", "cache.no-flush");
    private static final Set<String> QCOW2 = Set.of("lazy-refcounts", "pass-discard-request", "pass-discard-snapshot",
            "pass-discard-other", "discard-no-unref", "overlap-check", "overlap-check.template", "cache-size",
            "l2-cache-size", "l2-cache-entry-size", "refcount-cache-size", "cache-clean-interval", "backing", "data-file",
            "encrypt.key-secret", "encrypt.format");
    private static final Set<String> FILE = Set.of("filename", "locking", "aio", "aio-max-batch", "pr-manager",
            "drop-cache", "x-check-cache-dropped");
    private static final List<String> FORMATS = List.of("qcow2", "raw");

    private ImageOpts() {
    }

    /** Sets whether this command's image names are option lists (--image-opts). */
    static void active(boolean on) {
        if (on) {
            ACTIVE.set(true);
        } else {
            ACTIVE.remove();
        }
    }

    static boolean active() {
        return Boolean.TRUE.equals(ACTIVE.get());
    }

    /** Is {@code name} an option list here (json: always, key=value under --image-opts)? */
    static boolean applies(String name) {
        return name != null && (name.startsWith("json:") || active());
    }

    /** Whether {@code name} names options whose top driver is the file protocol (info calls the format "file"). */
    static boolean fileProtocol(String name) {
        if (!applies(name)) {
            return false;
        }
        Map<String, String> o = name.startsWith("json:") ? json(name.substring(5)) : keyValues(name);
        return "file".equals(o.get("driver"));
    }

    /** The name to show for an image named by options: its file. */
    static String displayName(String name) {
        if (!applies(name)) {
            return name;
        }
        try {
            return parse(name).filename();
        } catch (CliException e) {
            return name;
        }
    }

    /** The name qemu-img info shows: the file, or with a qcow2 option (encrypt.key-secret) the options as JSON. */
    static String infoName(String name) {
        if (!applies(name)) {
            return name;
        }
        try {
            Spec spec = parse(name);
            if (spec.keySecret() != null) {
                return "json:{\"encrypt.key-secret\": " + QemuJson.quote(spec.keySecret())
                        + ", \"driver\": \"qcow2\", \"file\": {\"driver\": \"file\", \"filename\": "
                        + QemuJson.quote(spec.filename()) + "}}";
            }
            return spec.filename();
        } catch (CliException e) {
            return name;
        }
    }

    /**
     * For the commands that open their image by path: the file an option list names, its
     * format put into {@code format[0]} when none was given; a plain name comes back as it is.
     */
    static String resolve(String name, String[] format) {
        if (!applies(name)) {
            return name;
        }
        Spec spec;
        try {
            spec = parse(name);
        } catch (CliException e) {
            throw new CliException("Could not open '" + name + "': " + e.getMessage(), e.exitCode(), e);
        }
        if (format[0] == null) {
            format[0] = spec.format();
        }
        return spec.filename();
    }

    /**
     * The passphrase {@code encrypt.key-secret} names in an option list (null: none, or a
     * plain file name), or qemu-img's "No secret with id" refusal.
     */
    static byte[] secret(String name) {
        if (!applies(name)) {
            return null;
        }
        String id = parse(name).keySecret();
        return id == null ? null : ObjectOption.secret(id);
    }

    /** Reads the options; a refusal is a CliException with qemu-img's words (without the "Could not open" prefix). */
    static Spec parse(String name) {
        Map<String, String> o = name.startsWith("json:") ? json(name.substring(5)) : keyValues(name);
        String driver = o.get("driver");
        if (driver == null && o.keySet().stream().noneMatch(k -> k.equals("file") || k.startsWith("file."))) {
            throw new CliException("Must specify either driver or file");
        }
        boolean share = "on".equals(o.get("force-share")) || "true".equals(o.get("force-share"));
        if ("file".equals(driver)) {
            for (String k : o.keySet()) {
                if (!NODE.contains(k) && !FILE.contains(k)) {
                    throw new CliException("Block protocol 'file' doesn't support the option '" + k + "'");
                }
            }
            String filename = o.get("filename");
            if (filename == null) {
                throw new CliException("The 'file' block driver requires a file name");
            }
            return new Spec(filename, Images.RAW, share);
        }
        if (driver != null && !FORMATS.contains(driver)) {
            Formats.checkOpenable(driver, "");
            throw new CliException("Unknown driver '" + driver + "'");
        }
        if (o.containsKey("file")) {
            String f = o.get("file");
            throw new CliException("Cannot find device='" + f + "' nor node-name='" + f + "'");
        }
        String fileDriver = o.getOrDefault("file.driver", "file");
        if (!fileDriver.equals("file")) {
            Formats.checkOpenable(fileDriver, "");
            throw new CliException("qcow4j reads images from files only, not through the '" + fileDriver + "' driver");
        }
        for (String k : o.keySet()) {
            if (k.startsWith("file.")) {
                String sub = k.substring(5);
                if (!NODE.contains(sub) && !FILE.contains(sub)) {
                    throw new CliException("Block protocol 'file' doesn't support the option '" + sub + "'");
                }
            } else if (!NODE.contains(k) && !("qcow2".equals(driver) && QCOW2.contains(k))) {
                if ("raw".equals(driver) && (k.equals("offset") || k.equals("size"))) {
                    throw new CliException("qcow4j does not support the raw driver's '" + k + "' option");
                }
                throw new CliException(driver == null ? "Unknown option '" + k + "'"
                        : "Block format '" + driver + "' does not support the option '" + k + "'");
            }
        }
        String filename = o.get("file.filename");
        if (filename == null) {
            throw new CliException(o.containsKey("file.driver") ? "The 'file' block driver requires a file name"
                    : "A block device must be specified for \"file\"");
        }
        String format = o.get("encrypt.format");
        if (format != null && !format.equals("luks")) {
            throw new CliException(format.equals("aes") ? "qcow4j does not support the legacy AES encryption"
                    : "Parameter 'encrypt.format' does not accept value '" + format + "'");
        }
        return new Spec(filename, driver, share, o.get("encrypt.key-secret"));
    }

    private static Map<String, String> keyValues(String list) {
        Map<String, String> o = new LinkedHashMap<>();
        List<String> items = OptionList.splitItems(list);
        for (int i = 0; i < items.size(); i++) {
            String item = items.get(i);
            int eq = item.indexOf('=');
            if (eq < 0 && i == 0) {
                o.put("file", item); // qemu's implied key: a node name
                continue;
            }
            if (eq <= 0) {
                throw new CliException("Invalid parameter '" + (eq < 0 ? item : "") + "'");
            }
            o.put(item.substring(0, eq), item.substring(eq + 1));
        }
        return o;
    }

    private static Map<String, String> json(String text) {
        JsonNode node;
        try {
            node = new ObjectMapper().readTree(text);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new CliException("Could not parse the JSON options: JSON parse error, " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject()) {
            throw new CliException("Invalid JSON object given");
        }
        Map<String, String> o = new LinkedHashMap<>();
        flatten("", node, o);
        return o;
    }

    private static void flatten(String prefix, JsonNode node, Map<String, String> out) {
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            String key = prefix + f.getKey();
            if (f.getValue().isObject()) {
                flatten(key + ".", f.getValue(), out);
            } else if (f.getValue().isBoolean()) {
                out.put(key, f.getValue().asBoolean() ? "on" : "off");
            } else {
                out.put(key, f.getValue().asText());
            }
        }
    }
}
