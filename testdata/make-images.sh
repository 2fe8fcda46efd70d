#!/usr/bin/env bash
# Regenerates the qcow2 reference images in this directory with the real
# qemu-img/qemu-io (Debian qemu-utils 7.2). Content is deterministic: fixed
# qemu-io patterns, and "random" bytes from AES-CTR over zeros with fixed keys.
# Only the snapshot table's dates change from run to run.
# Usage: testdata/make-images.sh   (from any directory)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export LC_ALL=C
ulimit -c 0   # qemu-io's `abort` must not leave core files behind

for t in qemu-img qemu-io openssl; do
  command -v "$t" >/dev/null || { echo "make-images.sh: $t is missing" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

K=1024
M=$((1024 * 1024))

# create IMAGE SIZE [qemu-img create options...]
create() {
  local img=$1 size=$2; shift 2
  rm -f "$img"
  qemu-img create -q -f qcow2 "$@" "$img" "$size"
}

# io IMAGE CMD... : each CMD becomes one `qemu-io -c`; any failed command fails the script
io() {
  local img=$1; shift
  local args=() c
  for c in "$@"; do args+=(-c "$c"); done
  qemu-io -f qcow2 "${args[@]}" "$img" >/dev/null
}

# io_abort IMAGE CMD... : runs the commands, then qemu-io's `abort` (a simulated crash)
io_abort() {
  local img=$1; shift
  local args=() c rc=0
  for c in "$@"; do args+=(-c "$c"); done
  # in a subshell with stderr closed, so bash's "Aborted" notice stays quiet too
  (qemu-io -f qcow2 "${args[@]}" -c abort "$img" >/dev/null; exit $?) 2>/dev/null || rc=$?
  [ "$rc" -eq 134 ] || { echo "make-images.sh: expected qemu-io abort (134), got $rc" >&2; exit 1; }
}

# rnd FILE OFFSET LENGTH SEED : writes LENGTH incompressible, reproducible bytes into FILE
rnd() {
  head -c "$3" /dev/zero \
    | openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$4")" -iv "$(printf '%032x' 0)" \
    | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# pat FILE OFFSET LENGTH BYTE : like qemu-io's `write -P BYTE`, on a raw file
pat() {
  head -c "$3" /dev/zero | tr '\0' "$(printf '\\%03o' "$4")" \
    | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

echo "qemu-img: $(qemu-img --version | head -1)"

# --- empty: a fresh image, nothing written
create empty.qcow2 64M

# --- compressed: convert -c of a raw with clusters that compress well, badly, not at all
src=$tmp/compress-src.raw
truncate -s $((M + 12 * K)) "$src"      # 16 full clusters + a partial last one
pat "$src" 0            $((64 * K)) 0x11                          # c0: one byte value
rnd "$src" $((64 * K))  $((64 * K)) 1                             # c1: random, stays uncompressed
rnd "$src" $((128 * K)) $((32 * K)) 2; pat "$src" $((160 * K)) $((32 * K)) 0x22  # c2: half random
                                                                  # c3: zeros, left unallocated
rnd "$src" $((256 * K)) $((4 * K)) 3;  pat "$src" $((260 * K)) $((60 * K)) 0x33  # c4
pat "$src" $((320 * K)) $((64 * K)) 0x44; rnd "$src" $((350 * K)) $((2 * K)) 4   # c5
for i in $(seq 6 15); do                                          # c6..c15: growing random parts
  rnd "$src" $((i * 64 * K)) $(((i - 5) * 3 * K)) $((10 + i))
  pat "$src" $((i * 64 * K + (i - 5) * 3 * K)) $(((64 - (i - 5) * 3) * K)) $((0x50 + i))
done
pat "$src" $((M)) $((12 * K)) 0x66                                # c16: partial last cluster
for ct in zlib zstd; do
  img=$ct-compressed.qcow2
  rm -f "$img"
  # -m 1: one coroutine, so compressed clusters land in the same order every run
  qemu-img convert -c -m 1 -f raw -O qcow2 -o compression_type=$ct "$src" "$img"
  # rewriting part of a compressed cluster turns it into a normal one
  io "$img" "write -P 0x99 $((320 * K + 4 * K)) 4k"
done

# --- zero clusters (v3 zero flag): full and partial, kept allocated and unmapped
img=zero-clusters.qcow2
create $img 16M
io $img "write -P 0x5a 0 384k" \
  "write -z 64k 64k" \
  "write -z $((132 * K)) 8k" \
  "write -z -u 192k 64k" \
  "write -z -u $((260 * K)) 2k" \
  "write -z 2M 192k" \
  "write -z 4M 64k" \
  "write -P 0x77 $((4 * M + 16 * K)) 4k"

# --- a 3-deep backing chain, relative names, growing virtual size (8M <- 16M <- 32M).
# Guest clusters c0..c4 hold base data; in the top, c0 is zeroed, c1 comes from mid,
# c2 from top, c3 from mid (a partial write COWed from base), c4 from base.
create chain-base.qcow2 8M
io chain-base.qcow2 "write -P 0xb1 0 320k" \
  "write -P 0xb2 1M 128k" \
  "write -P 0xb3 $((8 * M - 64 * K)) 64k"
create chain-mid.qcow2 16M -b chain-base.qcow2 -F qcow2
io chain-mid.qcow2 "write -P 0x61 64k 128k" \
  "write -P 0x62 $((196 * K)) 4k" \
  "discard 1M 128k" \
  "write -P 0x63 8M 64k"        # discard: v3 with a backing file sets the zero flag
create chain-top.qcow2 32M -b chain-mid.qcow2 -F qcow2
io chain-top.qcow2 "write -P 0x71 128k 64k" \
  "write -z 0 64k" \
  "write -P 0x72 $((M + 64 * K)) 4k" \
  "write -P 0x73 $((8 * M - 32 * K)) 8k" \
  "write -P 0x74 20M 64k"

# --- v2 (compat=0.10): no zero flag
img=v2.qcow2
create $img 16M -o compat=0.10
io $img "write -P 0x11 0 64k" \
  "write -P 0x22 1M 96k" \
  "write -P 0x33 $((3 * M + 256)) 1000" \
  "write -z $((M + 16 * K)) 16k" \
  "write -z 2M 64k"

# --- extended L2 entries: 64k clusters of 32 x 2k subclusters
img=extended-l2.qcow2
create $img 16M -o extended_l2=on,cluster_size=64k
io $img "write -P 0x41 0 4k" \
  "write -P 0x42 10k 1k" \
  "write -P 0x43 $((126 * K)) 4k" \
  "write -z 2k 2k" \
  "write -z $((260 * K)) 2k" \
  "write -P 0x44 512k 64k" \
  "write -z $((520 * K)) 6k"
create extended-l2-base.qcow2 1M -o cluster_size=4k
io extended-l2-base.qcow2 "write -P 0xbb 0 192k"
img=extended-l2-backed.qcow2
create $img 4M -o extended_l2=on,cluster_size=64k -b extended-l2-base.qcow2 -F qcow2
io $img "write -P 0x51 4k 2k" \
  "write -P 0x52 $((67 * K)) 1k" \
  "write -z $((130 * K)) 2k" \
  "write -P 0x53 2M 8k"

# --- cluster sizes at both ends
img=cluster-512.qcow2
create $img 4M -o cluster_size=512
io $img "write -P 0x21 0 256k" \
  "write -z 64k 32k" \
  "write -P 0x22 $((M + 100)) 3000" \
  "write -P 0x23 $((4 * M - K)) 1k"
img=cluster-2m.qcow2            # every metadata cluster is 2 MiB: keep to one data cluster
create $img 16M -o cluster_size=2M
io $img "write -P 0x2a 0 64k" \
  "write -P 0x2b $((M + 512)) 4k" \
  "write -z 4M 2M"

# --- internal snapshots: the active image and the snapshots differ
img=snapshot.qcow2
create $img 16M
io $img "write -P 0x10 0 128k" "write -P 0x11 1M 64k"
qemu-img snapshot -c snap1 $img
io $img "write -P 0x20 64k 64k" "write -P 0x21 $((M + 4 * K)) 4k" "write -P 0x22 2M 64k"
qemu-img snapshot -c snap2 $img
io $img "write -P 0x30 0 4k" "discard 2M 64k"

# --- external data file (relative name); 4k clusters keep the metadata small,
# and qemu sizes the data file to the full virtual size
img=data-file.qcow2
rm -f data-file.data
create $img 512k -o data_file=data-file.data,cluster_size=4k
io $img "write -P 0xd1 0 64k" \
  "write -P 0xd2 $((128 * K + K)) 2k" \
  "write -z 16k 8k" \
  "write -P 0xd3 $((508 * K)) 4k"

# --- raw backing file
rm -f raw-backing.raw
qemu-img create -q -f raw raw-backing.raw 256k
qemu-io -f raw -c "write -P 0xe1 0 128k" -c "write -P 0xe2 128k 128k" raw-backing.raw >/dev/null
img=raw-backed.qcow2
create $img 4M -o cluster_size=4k -b raw-backing.raw -F raw
io $img "write -P 0xe3 64k 8k" \
  "write -P 0xe4 $((130 * K)) 1k" \
  "write -P 0xe5 2M 64k"

# --- refcount widths at both ends
for bits in 1 64; do
  img=refcount-bits-$bits.qcow2
  create $img 16M -o refcount_bits=$bits,cluster_size=4k
  io $img "write -P 0x$bits 0 128k" "write -P 0x0f 1M 4k" "write -z 64k 8k"
done

# --- lazy refcounts with the dirty bit left set by a crash
img=lazy-dirty.qcow2
create $img 16M -o lazy_refcounts=on,cluster_size=4k
io $img "write -P 0x1a 0 64k"
io_abort $img "write -P 0x1b 256k 16k"

# --- persistent dirty bitmaps
img=bitmaps.qcow2
create $img 16M
qemu-img bitmap --add -g 64k $img b-enabled
io $img "write -P 0x61 0 64k" "write -P 0x62 1M 4k"
qemu-img bitmap --add -g 128k --disable $img b-disabled
qemu-img bitmap --enable $img b-disabled   # enabled only while the next writes run
io $img "write -P 0x63 3M 64k" "write -P 0x64 $((5 * M + 100 * K)) 100k"
qemu-img bitmap --disable $img b-disabled
io $img "write -P 0x65 8M 64k"

img=bitmaps-inuse.qcow2
create $img 16M -o cluster_size=4k
qemu-img bitmap --add -g 64k $img b-inuse
io $img "write -P 0x71 0 64k"
io_abort $img "write -P 0x72 2M 64k"

echo "images in $(pwd):"
ls -l -- *.qcow2 *.data *.raw
du -ch --apparent-size -- *.qcow2 *.data *.raw | tail -1 | sed 's/total/apparent total/'
