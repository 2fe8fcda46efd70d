package io.qcow4j.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Base64;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code --object TYPE,id=ID,...} (or its JSON form) as qemu-img reads it: {@code secret}
 * objects are kept, by id, for the command that runs now (LUKS keys); the other types
 * qemu-img can create are accepted and ignored (nothing of qcow4j uses them); types
 * qemu-img knows but cannot create, unknown types, bad ids and bad secret properties are
 * refused in its words. {@code help} and {@code TYPE,help} print qemu-img's lists.
 */
final class ObjectOption {
    /** What qemu-img 7.2 can create ("--object help"). */
    static final List<String> CREATABLE = List.of("authz-list", "authz-list-file", "authz-simple", "main-loop",
            "pr-manager-helper", "secret", "secret_keyring", "thread-context", "throttle-group", "tls-cipher-suites",
            "tls-creds-anon", "tls-creds-psk", "tls-creds-x509");
    /** Names the qom-type enumeration knows whose driver qemu-img lacks. */
    private static final Set<String> NOT_IN_QEMU_IMG = Set.of("can-bus", "cryptodev-backend",
            "cryptodev-backend-builtin", "iothread", "memory-backend-ram", "pef-guest", "rng-builtin", "rng-random",
            "s390-pv-guest");
    /** Enumeration names besides those, whose own parameters qemu-img checks first: accepted as the others. */
    private static final Set<String> OTHER_ENUM = Set.of("authz-listfile", "authz-pam", "can-host-socketcan", "colo-compare",
            "cryptodev-vhost-user", "dbus-vmstate", "filter-buffer", "filter-dump", "filter-mirror", "filter-redirector",
            "filter-replay", "filter-rewriter", "input-barrier", "input-linux", "memory-backend-epc", "memory-backend-file",
            "memory-backend-memfd", "qtest", "rng-egd", "sev-guest", "x-remote-object", "x-vfio-user-server");
    private static final Set<String> SECRET_PROPERTIES = Set.of("data", "file", "format", "iv", "keyid");
    private static final ThreadLocal<Map<String, byte[]>> SECRETS = ThreadLocal.withInitial(HashMap::new);
    private static final ThreadLocal<Set<String>> IDS = ThreadLocal.withInitial(java.util.HashSet::new);

    private ObjectOption() {
    }

    /** Forgets the objects of the last command (each command line starts with none). */
    static void reset() {
        SECRETS.remove();
        IDS.remove();
    }

    /** Reads one {@code --object} argument; "help" prints and ends the command (exit 0). */
    static void accept(String arg, PrintWriter out) {
        Map<String, String> props = arg.startsWith("{") ? json(arg) : keyValues(arg);
        String type = props.remove("qom-type");
        if (props.containsKey("help")) {
            if ("secret".equals(type)) {
                out.println("secret options:");
                for (String l : List.of("data=<string>", "file=<string>", "format=<QCryptoSecretFormat>", "iv=<string>",
                        "keyid=<string>")) {
                    out.println("  " + l);
                }
                out.flush();
                throw CliException.exit(0);
            }
            if (type == null || !CREATABLE.contains(type)) {
                out.println("List of user creatable objects:");
                CREATABLE.forEach(t -> out.println("  " + t));
                out.flush();
                throw CliException.exit(0);
            }
            throw new CliException("qcow4j does not list the options of object type '" + type + "'");
        }
        if (type == null) {
            throw new CliException("Parameter 'qom-type' is missing");
        }
        if (NOT_IN_QEMU_IMG.contains(type)) {
            throw new CliException("invalid object type: " + type);
        }
        if (!CREATABLE.contains(type) && !OTHER_ENUM.contains(type)) {
            throw new CliException("Parameter 'qom-type' does not accept value '" + type + "'");
        }
        String id = props.remove("id");
        if (id == null) {
            throw new CliException("Parameter 'id' is missing");
        }
        if (!id.matches("[A-Za-z][A-Za-z0-9._-]*")) {
            throw new CliException("Parameter 'id' expects an identifier\n"
                    + "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.");
        }
        if (type.equals("secret")) {
            secret(id, props);
        }
        if (!IDS.get().add(id)) {
            throw new CliException("attempt to add duplicate property '" + id + "' to object (type 'container')");
        }
    }

    /** The commands of qemu-img that take {@code --object} (all but those parsed getopt-style, which read it themselves). */
    private static final Set<String> COMMANDS = Set.of("bitmap", "check", "commit", "compare", "convert", "create", "dd", "info", "io", "measure",
            "map", "rebase", "resize", "snapshot");

    /**
     * Reads and removes every {@code --object DEF} (or {@code --object=DEF}) of a command line
     * (the command name first) before the command parses the rest, in their order; the
     * command line without them. Stops at "--", as getopt does.
     */
    static List<String> extract(List<String> commandLine, PrintWriter out) {
        if (commandLine.isEmpty() || !COMMANDS.contains(commandLine.get(0))) {
            return commandLine;
        }
        List<String> rest = new java.util.ArrayList<>();
        rest.add(commandLine.get(0));
        for (int i = 1; i < commandLine.size(); i++) {
            String a = commandLine.get(i);
            if (a.equals("--")) {
                rest.addAll(commandLine.subList(i, commandLine.size()));
                break;
            }
            if (a.equals("--object")) {
                if (i + 1 >= commandLine.size() && commandLine.get(0).equals("resize")) {
                    rest.add(a); // resize counts its arguments first: "Not enough arguments"
                    continue;
                }
                if (i + 1 >= commandLine.size()) {
                    throw new CliException(Program.usage("missing argument for option '--object'"));
                }
                accept(commandLine.get(++i), out);
            } else if (a.startsWith("--object=")) {
                accept(a.substring("--object=".length()), out);
            } else {
                rest.add(a);
            }
        }
        return rest;
    }

    /** The secret {@code id}'s bytes, or QEMU's refusal. */
    static byte[] secret(String id) {
        byte[] s = SECRETS.get().get(id);
        if (s == null) {
            throw new CliException("No secret with id '" + id + "'");
        }
        return s;
    }

    private static void secret(String id, Map<String, String> props) {
        for (String k : props.keySet()) {
            if (!SECRET_PROPERTIES.contains(k)) {
                throw new CliException("Parameter '" + k + "' is unexpected");
            }
        }
        String format = props.getOrDefault("format", "raw");
        if (!format.equals("raw") && !format.equals("base64")) {
            throw new CliException("Parameter 'format' does not accept value '" + format + "'");
        }
        String data = props.get("data");
        String file = props.get("file");
        if (data != null && file != null) {
            throw new CliException("'file' and 'data' are mutually exclusive");
        }
        if (data == null && file == null) {
            throw new CliException("Either 'file' or 'data' must be provided");
        }
        if (props.containsKey("keyid") || props.containsKey("iv")) {
            String keyid = props.get("keyid");
            if (keyid != null && !SECRETS.get().containsKey(keyid)) {
                throw new CliException(IDS.get().contains(keyid) || keyid.equals(id)
                        ? "Secret with id '" + keyid + "' has no data" : "No secret with id '" + keyid + "'");
            }
            throw new CliException("encrypted secrets (keyid, iv) are not supported by qcow4j");
        }
        byte[] raw;
        if (file != null) {
            try {
                raw = Files.readAllBytes(Cwd.path(file));
            } catch (IOException e) {
                throw new CliException("Unable to read " + file + ": Failed to open file \u201c" + file + "\u201d: "
                        + Images.reason(e));
            }
        } else {
            raw = data.getBytes(StandardCharsets.UTF_8);
        }
        if (format.equals("base64")) {
            try {
                raw = Base64.getDecoder().decode(new String(raw, StandardCharsets.US_ASCII).strip());
            } catch (IllegalArgumentException e) {
                // qemu decodes when the secret is used; keep it unusable until then
                raw = null;
            }
        }
        if (raw != null) {
            SECRETS.get().put(id, raw);
        }
    }

    /** "TYPE,key=value,..." with the first bare word the type (qemu's implied qom-type). */
    private static Map<String, String> keyValues(String arg) {
        Map<String, String> props = new LinkedHashMap<>();
        List<String> items = OptionList.splitItems(arg);
        for (int i = 0; i < items.size(); i++) {
            String item = items.get(i);
            int eq = item.indexOf('=');
            if (eq < 0) {
                if (item.equals("help") || item.equals("?")) {
                    props.put("help", "on");
                } else if (i == 0) {
                    props.put("qom-type", item);
                } else if (item.isEmpty()) {
                    throw new CliException("Invalid parameter ''");
                } else {
                    props.put(item, "on");
                }
                continue;
            }
            String key = item.substring(0, eq);
            if (key.isEmpty()) {
                throw new CliException("Invalid parameter ''");
            }
            props.put(key, item.substring(eq + 1));
        }
        if (props.containsKey("qom-type") && props.get("qom-type").isEmpty()) {
            throw new CliException("Invalid parameter ''");
        }
        return props;
    }

    private static Map<String, String> json(String arg) {
        JsonNode node;
        try {
            node = new ObjectMapper().readTree(arg);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new CliException("JSON parse error, " + e.getOriginalMessage());
        }
        Map<String, String> props = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (!f.getValue().isTextual()) {
                throw new CliException("Invalid parameter type for '" + f.getKey() + "', expected: string");
            }
            props.put(f.getKey(), f.getValue().asText());
        }
        return props;
    }
}
