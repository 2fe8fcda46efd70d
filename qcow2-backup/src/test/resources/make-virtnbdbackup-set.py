# Writes a virtnbdbackup-style set with virtnbdbackup's own sparsestream module and lz4 helpers:
# a full and an incremental of a small disk, and the raw disk at each point.
import sys, os, json
from libvirtnbdbackup.sparsestream import streamer, types
from libvirtnbdbackup.common import common as lib

out, compress = sys.argv[1], sys.argv[2] == "1"
MIB = 1024 * 1024
size = 8 * MIB
stream = streamer.SparseStream(types)
t = types.SparseStreamTypes()

class Args: pass
class Cpt: pass
class Disk: pass

def write(name, level, cpt, parent, extents, disk):
    args = Args(); args.cpt = Cpt(); args.cpt.name = cpt; args.cpt.parent = parent
    args.compress = 2 if compress else False; args.level = level
    d = Disk(); d.target = "vda"; d.format = "qcow2"
    data = sum(l for (o, l, kind) in extents if kind == "data")
    with open(os.path.join(out, name), "wb") as w:
        meta = stream.dumpMetadata(args, size, data, d)
        stream.writeFrame(w, t.META, 0, len(meta)); w.write(meta); w.write(t.TERM)
        sizes = []
        for (o, l, kind) in extents:
            if kind == "zero":
                stream.writeFrame(w, t.ZERO, o, l)
                continue
            stream.writeFrame(w, t.DATA, o, l)
            payload = bytes(disk[o:o + l])
            if compress and l > MIB:
                # as virtnbdbackup's writeChunk does past its request size: one frame per step
                steps = []
                for s in range(o, o + l, MIB):
                    c = lib.lz4CompressFrame(bytes(disk[s:s + MIB]), 2)
                    w.write(c); steps.append(len(c))
                sizes.append({sum(steps): steps})
            elif compress:
                c = lib.lz4CompressFrame(payload, 2)
                w.write(c); sizes.append(len(c))
            else:
                w.write(payload)
            w.write(t.TERM)
        stream.writeFrame(w, t.STOP, 0, 0)
        if compress:
            stream.writeCompressionTrailer(w, sizes)

disk = bytearray(size)
def fill(o, l, seed):
    for i in range(l):
        disk[o + i] = (seed * 31 + i * 7 + (i >> 9)) & 0xff
fill(0, 3 * MIB, 1); fill(5 * MIB, 64 * 1024, 2)
write("vda.full.data", "full", "virtnbdbackup.0", None,
      [(0, 3 * MIB, "data"), (3 * MIB, 2 * MIB, "zero"), (5 * MIB, 64 * 1024, "data"), (5 * MIB + 65536, 3 * MIB - 65536, "zero")], disk)
open(os.path.join(out, "p0.raw"), "wb").write(disk)
os.utime(os.path.join(out, "vda.full.data"), (1000, 1000))
fill(MIB, 4096, 3); fill(7 * MIB, 128 * 1024, 4)
write("vda.inc.virtnbdbackup.1.data", "inc", "virtnbdbackup.1", "virtnbdbackup.0",
      [(MIB, 4096, "data"), (7 * MIB, 128 * 1024, "data")], disk)
open(os.path.join(out, "p1.raw"), "wb").write(disk)
os.utime(os.path.join(out, "vda.inc.virtnbdbackup.1.data"), (2000, 2000))
