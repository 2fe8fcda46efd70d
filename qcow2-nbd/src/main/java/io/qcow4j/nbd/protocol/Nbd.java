package io.qcow4j.nbd.protocol;

/**
 * The numbers of the NBD protocol, as the NetworkBlockDevice spec ({@code doc/proto.md})
 * names them, shared by the server and the client. Values are the wire values
 * (network byte order on the wire).
 */
public final class Nbd {
    private Nbd() {
    }

    // ---------------------------------------------------------------- handshake

    /** The IANA port of NBD, qemu-nbd's default. */
    public static final int DEFAULT_PORT = 10809;

    /** "NBDMAGIC": the first 8 bytes the server sends. */
    public static final long NBDMAGIC = 0x4e42444d41474943L;
    /** "IHAVEOPT": newstyle negotiation, after NBDMAGIC, and the magic of every option request. */
    public static final long IHAVEOPT = 0x49484156454f5054L;
    /** Magic of every option reply. */
    public static final long OPTION_REPLY_MAGIC = 0x3e889045565a9L;

    /** Handshake flags (server, 16 bits). */
    public static final int FLAG_FIXED_NEWSTYLE = 1;
    public static final int FLAG_NO_ZEROES = 1 << 1;
    /** Client flags (32 bits). */
    public static final int FLAG_C_FIXED_NEWSTYLE = 1;
    public static final int FLAG_C_NO_ZEROES = 1 << 1;

    // ---------------------------------------------------------------- options

    public static final int OPT_EXPORT_NAME = 1;
    public static final int OPT_ABORT = 2;
    public static final int OPT_LIST = 3;
    public static final int OPT_PEEK_EXPORT = 4;
    public static final int OPT_STARTTLS = 5;
    public static final int OPT_INFO = 6;
    public static final int OPT_GO = 7;
    public static final int OPT_STRUCTURED_REPLY = 8;
    public static final int OPT_LIST_META_CONTEXT = 9;
    public static final int OPT_SET_META_CONTEXT = 10;
    public static final int OPT_EXTENDED_HEADERS = 11;

    /** Option reply types; the error ones have bit 31 set. */
    public static final int REP_ACK = 1;
    public static final int REP_SERVER = 2;
    public static final int REP_INFO = 3;
    public static final int REP_META_CONTEXT = 4;
    public static final int REP_ERR_UNSUP = (1 << 31) + 1;
    public static final int REP_ERR_POLICY = (1 << 31) + 2;
    public static final int REP_ERR_INVALID = (1 << 31) + 3;
    public static final int REP_ERR_PLATFORM = (1 << 31) + 4;
    public static final int REP_ERR_TLS_REQD = (1 << 31) + 5;
    public static final int REP_ERR_UNKNOWN = (1 << 31) + 6;
    public static final int REP_ERR_SHUTDOWN = (1 << 31) + 7;
    public static final int REP_ERR_BLOCK_SIZE_REQD = (1 << 31) + 8;
    public static final int REP_ERR_TOO_BIG = (1 << 31) + 9;

    /** Information types of OPT_INFO / OPT_GO. */
    public static final int INFO_EXPORT = 0;
    public static final int INFO_NAME = 1;
    public static final int INFO_DESCRIPTION = 2;
    public static final int INFO_BLOCK_SIZE = 3;

    // ---------------------------------------------------------------- transmission flags (16 bits)

    public static final int FLAG_HAS_FLAGS = 1;
    public static final int FLAG_READ_ONLY = 1 << 1;
    public static final int FLAG_SEND_FLUSH = 1 << 2;
    public static final int FLAG_SEND_FUA = 1 << 3;
    public static final int FLAG_ROTATIONAL = 1 << 4;
    public static final int FLAG_SEND_TRIM = 1 << 5;
    public static final int FLAG_SEND_WRITE_ZEROES = 1 << 6;
    public static final int FLAG_SEND_DF = 1 << 7;
    public static final int FLAG_CAN_MULTI_CONN = 1 << 8;
    public static final int FLAG_SEND_RESIZE = 1 << 9;
    public static final int FLAG_SEND_CACHE = 1 << 10;
    public static final int FLAG_SEND_FAST_ZERO = 1 << 11;

    // ---------------------------------------------------------------- requests and replies

    public static final int REQUEST_MAGIC = 0x25609513;
    public static final int SIMPLE_REPLY_MAGIC = 0x67446698;
    public static final int STRUCTURED_REPLY_MAGIC = 0x668e33ef;
    /** Request header: magic, flags (16), type (16), cookie (64), offset (64), length (32). */
    public static final int REQUEST_SIZE = 28;

    public static final int CMD_READ = 0;
    public static final int CMD_WRITE = 1;
    public static final int CMD_DISC = 2;
    public static final int CMD_FLUSH = 3;
    public static final int CMD_TRIM = 4;
    public static final int CMD_CACHE = 5;
    public static final int CMD_WRITE_ZEROES = 6;
    public static final int CMD_BLOCK_STATUS = 7;
    public static final int CMD_RESIZE = 8;

    /** Command flags (16 bits). */
    public static final int CMD_FLAG_FUA = 1;
    public static final int CMD_FLAG_NO_HOLE = 1 << 1;
    public static final int CMD_FLAG_DF = 1 << 2;
    public static final int CMD_FLAG_REQ_ONE = 1 << 3;
    public static final int CMD_FLAG_FAST_ZERO = 1 << 4;

    /** Structured reply chunk flags and types. */
    public static final int REPLY_FLAG_DONE = 1;
    public static final int REPLY_TYPE_NONE = 0;
    public static final int REPLY_TYPE_OFFSET_DATA = 1;
    public static final int REPLY_TYPE_OFFSET_HOLE = 2;
    public static final int REPLY_TYPE_BLOCK_STATUS = 5;
    public static final int REPLY_TYPE_ERROR = (1 << 15) + 1;
    public static final int REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2;

    /** Error values on the wire (the spec's errno subset). */
    public static final int EPERM = 1;
    public static final int EIO = 5;
    public static final int ENOMEM = 12;
    public static final int EINVAL = 22;
    public static final int ENOSPC = 28;
    public static final int EOVERFLOW = 75;
    public static final int ENOTSUP = 95;
    public static final int ESHUTDOWN = 108;

    // ---------------------------------------------------------------- meta contexts

    public static final String CONTEXT_BASE_ALLOCATION = "base:allocation";
    public static final String CONTEXT_DIRTY_BITMAP_PREFIX = "qemu:dirty-bitmap:";
    public static final String CONTEXT_ALLOCATION_DEPTH = "qemu:allocation-depth";
    /** base:allocation flags. */
    public static final int STATE_HOLE = 1;
    public static final int STATE_ZERO = 1 << 1;
    /** qemu:dirty-bitmap flag. */
    public static final int STATE_DIRTY = 1;

    /** The largest string the spec lets either side send (names, context queries). */
    public static final int MAX_STRING = 4096;
    /** The default largest request payload, as qemu-nbd advertises it (32 MiB). */
    public static final int MAX_PAYLOAD = 32 << 20;
}
