#!/usr/bin/python3
# Clients against one NBD export, with Debian's python3-libnbd:
#   nbd-clients.py URI SOCKET RAW_COPY
# 8 connections read the whole disk at once (each must see RAW_COPY's bytes), while
# another sends malformed and out-of-range requests (the spec's errors, and the connection
# goes on) and a raw socket drops in the middle of a write payload (nothing of it may land).
# Prints OK and exits 0, or the first failure and exits 1.
import errno, hashlib, socket, struct, sys, threading
import nbd

uri, sock_path, raw_copy = sys.argv[1:4]
with open(raw_copy, 'rb') as f:
    expected = f.read()
size = len(expected)
failures = []

def fail(msg):
    failures.append(msg)

def reader(n):
    try:
        h = nbd.NBD()
        h.connect_uri(uri)
        step = 256 * 1024 + n * 4096          # every reader cuts the disk differently
        got = bytearray(size)
        order = list(range(0, size, step))
        if n % 2:
            order.reverse()
        for off in order:
            ln = min(step, size - off)
            got[off:off + ln] = h.pread(ln, off)
        h.shutdown()
        if hashlib.sha256(got).digest() != hashlib.sha256(expected).digest():
            fail("reader %d: data differs" % n)
    except Exception as e:
        fail("reader %d: %r" % (n, e))

def expect_error(what, code, fn):
    try:
        fn()
    except nbd.Error as e:
        if e.errno not in (code, errno.errorcode[code]):   # libnbd gives the name
            fail("%s: errno %s, expected %s (%s)" % (what, e.errno, code, e))
        return
    fail("%s: no error" % what)

def malformed():
    try:
        h = nbd.NBD()
        h.add_meta_context("base:allocation")
        h.connect_uri(uri)
        h.set_strict_mode(0)                  # let libnbd send what a broken client would
        expect_error("read past the end", errno.EINVAL, lambda: h.pread(4096, size - 1024))
        expect_error("read over the maximum", errno.EOVERFLOW, lambda: h.pread(33 << 20, 0))
        expect_error("write over the maximum", errno.EOVERFLOW, lambda: h.pwrite(bytes(33 << 20), 0))
        expect_error("write past the end", errno.ENOSPC, lambda: h.pwrite(b'x' * 4096, size - 512))
        expect_error("zero past the end", errno.ENOSPC, lambda: h.zero(1 << 20, size))
        expect_error("trim past the end", errno.EINVAL, lambda: h.trim(1 << 20, size - 4096))
        expect_error("read with a bad flag", errno.EINVAL, lambda: h.pread(4096, 0, nbd.CMD_FLAG_REQ_ONE))
        expect_error("block status of nothing", errno.EINVAL,
                     lambda: h.block_status(0, 0, lambda *a: 0))
        # the connection goes on
        if h.pread(65536, 0) != expected[:65536]:
            fail("read after errors: data differs")
        h.shutdown()
    except Exception as e:
        fail("malformed: %r" % (e,))

def recv_all(s, n):
    b = b''
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("server closed")
        b += c
    return b

def half_write():
    """Fixed newstyle by hand, OPT_GO, then a 1 MiB write of which only 64 KiB arrive."""
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock_path)
        recv_all(s, 18)
        s.sendall(struct.pack('>I', 3))
        data = struct.pack('>IH', 0, 0)       # export "", no info requests
        s.sendall(struct.pack('>QII', 0x49484156454f5054, 7, len(data)) + data)
        while True:
            _, _, typ, ln = struct.unpack('>QIII', recv_all(s, 20))
            recv_all(s, ln)
            if typ == 1:
                break
            if typ & 0x80000000:
                raise Exception("OPT_GO refused")
        off = 8 << 20
        s.sendall(struct.pack('>IHHQQI', 0x25609513, 0, 1, 42, off, 1 << 20) + b'\xee' * 65536)
        s.close()
    except Exception as e:
        fail("half write: %r" % (e,))

threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
threads += [threading.Thread(target=malformed), threading.Thread(target=half_write)]
for t in threads:
    t.start()
for t in threads:
    t.join()

# the dropped write left nothing behind
try:
    h = nbd.NBD()
    h.connect_uri(uri)
    if h.pread(1 << 20, 8 << 20) != expected[8 << 20:9 << 20]:
        fail("the interrupted write changed the disk")
    h.shutdown()
except Exception as e:
    fail("final read: %r" % (e,))

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("OK")
