#!/usr/bin/env bash
# Persistent dirty bitmap costs of qcow4j (JMH io.qcow4j.jmh.BitmapFlushBenchmark and
# io.qcow4j.jmh.HeapFootprint) next to QEMU's on the same machine, as a markdown table on
# stdout:   measurement | qcow4j | QEMU | target
#
# The disk: qcow2, 16 TiB virtual, 2 MiB clusters, one persistent bitmap "b0" of 64 KiB
# granularity = 2^28 bits = 32 MiB of bitmap data (16 bitmap clusters).
#
# Images (in a temporary directory):
#   dirty.qcow2    qemu-img create -o cluster_size=2M; qemu-img bitmap --add -g 64k;
#                  qemu-io -c 'write -z -n 0 16T'  -> the bitmap is fully dirty
#   empty.qcow2    dirty.qcow2 + qemu-img bitmap --clear
#   one.qcow2      empty.qcow2 + qemu-io -c 'write 1T 64k'  -> one bit set
#   nobitmap.qcow2 dirty.qcow2 + qemu-img bitmap --remove
#   dense.qcow2    made by qcow4j: every other bit set (no cluster all ones or all zeros)
#
# QEMU's store cost = `qemu-io -c quit IMG` minus `qemu-io -r -c quit IMG`: the median of
# RUNS interleaved pairs (hyperfine, when installed, as a cross-check on the fully dirty
# image). A read-write open sets in_use on the bitmap, and the close stores it again (QEMU
# rewrites every non-zero bitmap cluster at every close) and flushes. Also: the wall-clock time qemu spends in pwrite64/pwritev and
# fdatasync/fsync during `qemu-io -c quit IMG` (strace -f -c -w, median of 5 runs), and the
# extra max RSS of `qemu-io -r -c quit IMG` over the image without a bitmap (heap rows).
#
# Environment:
#   JMH_ARGS    extra JMH options, e.g. "-wi 1 -i 1 -r 1 -w 1" (smoke run) or a benchmark regexp
#   RUNS        rw/ro pairs per QEMU image (default 20, after 3 warm-up pairs)
#   NO_BUILD=1  use the existing jmh/target/benchmarks.jar
#   OUT         directory for the raw logs (default jmh/target/run-bitmap-flush)
# Needs: java 17, mvn, qemu-img/qemu-io, jq, python3; optional: hyperfine, strace.
# Progress goes to stderr; the machine description and the table go to stdout.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=${RUNS:-20}
out=${OUT:-$root/jmh/target/run-bitmap-flush}
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/qcow4j-bm.XXXXXX")
trap 'rm -rf "$work"' EXIT
log() { echo "run-bitmap-flush: $*" >&2; }
for t in qemu-img qemu-io jq python3 java; do
  command -v "$t" >/dev/null || { log "$t is required"; exit 1; }
done

jar="$root/jmh/target/benchmarks.jar"
if [ "${NO_BUILD:-0}" != 1 ]; then
  log "building $jar"
  (cd "$root" && mvn -q -B -DskipTests package -pl jmh -am) >&2
fi
# the JVM flags Chronicle Bytes needs (bin/qcow4j's flags=( ... ) list, as bin/jmh reads it)
mapfile -t jflags < <(sed -n '/^flags=(/,/^)/{/^flags=(/d;/^)/d;s/^[[:space:]]*//;s/[[:space:]]*$//;/^$/d;/^#/d;p}' "$root/bin/qcow4j")
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- images
log "making the images in $work"
: > "$out/images.log"
run() { echo "\$ $*" >> "$out/images.log"; "$@" >> "$out/images.log" 2>&1; }
dirty="$work/dirty.qcow2"
t0=$(date +%s.%N)
run qemu-img create -q -f qcow2 -o cluster_size=2M "$dirty" 16T
run qemu-img bitmap --add -g 64k "$dirty" b0
run qemu-io -c 'write -z -n -q 0 16T' "$dirty"
t1=$(date +%s.%N)
cp --sparse=always "$dirty" "$work/empty.qcow2"
run qemu-img bitmap --clear "$work/empty.qcow2" b0
cp --sparse=always "$work/empty.qcow2" "$work/one.qcow2"
run qemu-io -c 'write -q 1T 64k' "$work/one.qcow2"
cp --sparse=always "$dirty" "$work/nobitmap.qcow2"
run qemu-img bitmap --remove "$work/nobitmap.qcow2" b0
run java "${jflags[@]}" -cp "$jar" io.qcow4j.jmh.BitmapImages dense "$work/dense.qcow2"
for f in dirty empty one nobitmap dense; do
  run qemu-img check -q "$work/$f.qcow2" || { log "qemu-img check $f.qcow2 failed (see $out/images.log)"; exit 1; }
done
qemu-img info "$dirty" >> "$out/images.log"
make_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')

# ---------------------------------------------------------------- I/O floor of this filesystem
log "fdatasync floor"
floor=$(python3 - "$work/floor.bin" <<'EOF'
import os, statistics, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
def med(n, size, off):
    buf = b'\x55' * size
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        os.pwrite(fd, buf, off)
        os.fdatasync(fd)
        t.append(time.perf_counter() - t0)
    return statistics.median(t) * 1000
small = med(50, 4096, 0)
two = med(20, 2 << 20, 1 << 20)
big = med(9, 32 << 20, 4 << 20)
os.close(fd)
print(f"{small:.2f} {two:.2f} {big:.1f}")
EOF
)
read -r floor_4k floor_2m floor_32m <<< "$floor"
rm -f "$work/floor.bin"

# ---------------------------------------------------------------- qcow4j: JMH
log "JMH: io.qcow4j.jmh.BitmapFlushBenchmark (log: $out/jmh.log)"
# shellcheck disable=SC2086
"$root/bin/jmh" 'io\.qcow4j\.jmh\.BitmapFlushBenchmark\.' -rf json -rff "$out/jmh.json" \
    -jvmArgsAppend "-Dqcow4j.jmh.dir=$work -Dqcow4j.jmh.bitmapImage=$dirty -Dqcow4j.jmh.denseImage=$work/dense.qcow2" \
    ${JMH_ARGS:-} > "$out/jmh.log" 2>&1 || { tail -40 "$out/jmh.log" >&2; log "JMH failed"; exit 1; }
grep -E '^Benchmark|^BitmapFlushBenchmark' "$out/jmh.log" >&2 || true
# The robust figure of one benchmark, in its unit: the median of all timed invocations
# (SampleTime: the store benchmarks) or the median of the iteration scores (AverageTime).
score() {
  jq -r --arg b "io.qcow4j.jmh.BitmapFlushBenchmark.$1" '.[] | select(.benchmark == $b) |
    if .mode == "sample" then .primaryMetric.scorePercentiles["50.0"]
    else (.primaryMetric.rawData | flatten | sort | .[(length - 1) / 2 | floor]) end' "$out/jmh.json" | head -1
}
# MiB written per store, from the "# <bench>: N stores, ... mean X MiB" lines
written() { sed -n "s/.*# $1: [0-9]* stores, .*mean \([0-9.]*\) MiB.*/\1/p" "$out/jmh.log" | tail -1; }

log "HeapFootprint (log: $out/heap.log)"
java "${jflags[@]}" -Xmx2g -Dqcow4j.jmh.dir="$work" -cp "$jar" io.qcow4j.jmh.HeapFootprint 20 > "$out/heap.log" 2>&1 \
  || { cat "$out/heap.log" >&2; log "HeapFootprint failed"; exit 1; }
cat "$out/heap.log" >&2
heap() { sed -n "s/^heap $1: \([0-9.]*\) MiB per bitmap (heapBytes() \([0-9.]*\) MiB)/\1 \2/p" "$out/heap.log"; }

# ---------------------------------------------------------------- QEMU
: > "$out/qemu.log"
# QEMU's store cost on IMG: `qemu-io -c quit IMG` (read-write) and `qemu-io -r -c quit IMG`
# (read-only), RUNS interleaved pairs after 3 warm-up pairs. Prints the median of the
# per-pair differences, the median rw time and the median ro time, in ms. Pairing keeps the
# difference meaningful while the load of a shared machine drifts.
qemu_store() {
  echo "\$ qemu-io -c quit $1  vs  qemu-io -r -c quit $1  ($runs interleaved pairs; raw: $out/qemu-$2.txt)" >> "$out/qemu.log"
  python3 -c '
import statistics, subprocess, sys, time
n, img, raw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rw_cmd = ["qemu-io", "-c", "quit", img]
ro_cmd = ["qemu-io", "-r", "-c", "quit", img]
def timed(cmd):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1000
for _ in range(3):
    timed(rw_cmd); timed(ro_cmd)
rw, ro = [], []
for i in range(n):
    if i % 2 == 0:
        a = timed(rw_cmd); b = timed(ro_cmd)
    else:
        b = timed(ro_cmd); a = timed(rw_cmd)
    rw.append(a); ro.append(b)
d = [a - b for a, b in zip(rw, ro)]
with open(raw, "w") as f:
    f.write("rw_ms ro_ms rw-ro_ms\n")
    for a, b, c in zip(rw, ro, d):
        f.write(f"{a:.1f} {b:.1f} {c:.1f}\n")
print(f"{statistics.median(d):.1f} {statistics.median(rw):.1f} {statistics.median(ro):.1f}")
' "$runs" "$1" "$out/qemu-$2.txt"
}
log "QEMU: qemu-io -c quit vs qemu-io -r -c quit, $runs interleaved pairs per image (log: $out/qemu.log)"
read -r q_full q_full_rw q_full_ro <<< "$(qemu_store "$dirty" dirty)"
read -r q_dense q_dense_rw q_dense_ro <<< "$(qemu_store "$work/dense.qcow2" dense)"
read -r q_one q_one_rw q_one_ro <<< "$(qemu_store "$work/one.qcow2" one)"
printf '  medians (ms): dirty %s (rw %s, ro %s); dense %s (rw %s, ro %s); one %s (rw %s, ro %s)\n' \
  "$q_full" "$q_full_rw" "$q_full_ro" "$q_dense" "$q_dense_rw" "$q_dense_ro" "$q_one" "$q_one_rw" "$q_one_ro" >> "$out/qemu.log"
# cross-check with hyperfine (not interleaved: each command's runs back to back)
hf="hyperfine not installed"
if command -v hyperfine >/dev/null; then
  log "QEMU: hyperfine cross-check on the fully dirty image"
  hyperfine -N -w 3 -r "$runs" --export-json "$out/hyperfine.json" \
      "qemu-io -c quit $dirty" "qemu-io -r -c quit $dirty" >> "$out/qemu.log" 2>&1
  hf=$(jq -r '"hyperfine medians on the fully dirty image: rw \(.results[0].median * 1000 | floor) ms, ro \(.results[1].median * 1000 | floor) ms, difference \((.results[0].median - .results[1].median) * 1000 | floor) ms"' "$out/hyperfine.json")
fi

# strace: ms of wall-clock time in write and flush calls during `qemu-io -c quit IMG` (median of 5)
q_pw="n/a"; q_sync="n/a"; q_nw="n/a"; q_ns="n/a"
if command -v strace >/dev/null; then
  log "QEMU: strace -f -c -w -e trace=pwrite64,pwritev,fdatasync,fsync"
  pw=(); sy=(); nw=(); ns=()
  for i in 1 2 3 4 5; do
    strace -f -c -w -e trace=pwrite64,pwritev,fdatasync,fsync -o "$out/strace-$i.txt" qemu-io -c quit "$dirty" >/dev/null 2>&1
    pw+=("$(awk '$NF ~ /^pwrite/ { s += $2 } END { printf "%.1f", s * 1000 }' "$out/strace-$i.txt")")
    sy+=("$(awk '$NF ~ /sync$/ { s += $2 } END { printf "%.1f", s * 1000 }' "$out/strace-$i.txt")")
    nw+=("$(awk '$NF ~ /^pwrite/ { s += $4 } END { print s + 0 }' "$out/strace-$i.txt")")
    ns+=("$(awk '$NF ~ /sync$/ { s += $4 } END { print s + 0 }' "$out/strace-$i.txt")")
  done
  med() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
  q_pw=$(med "${pw[@]}"); q_sync=$(med "${sy[@]}"); q_nw=$(med "${nw[@]}"); q_ns=$(med "${ns[@]}")
  { echo "\$ strace -f -c -w -e trace=pwrite64,pwritev,fdatasync,fsync qemu-io -c quit $dirty  (first of 5)"; cat "$out/strace-1.txt"; } >> "$out/qemu.log"
fi

# QEMU's memory for the bitmap: max RSS of `qemu-io -r -c quit IMG` minus that of the image
# without a bitmap (median of 3 each)
rss_kib() {
  local v=() i
  for i in 1 2 3; do v+=("$( { /usr/bin/time -f '%M' qemu-io -r -c quit "$1" >/dev/null; } 2>&1 | tail -1)"); done
  printf '%s\n' "${v[@]}" | sort -g | sed -n 2p
}
q_rss_empty="n/a"; q_rss_full="n/a"; q_rss_dense="n/a"
if [ -x /usr/bin/time ]; then
  log "QEMU: max RSS of qemu-io -r -c quit"
  base=$(rss_kib "$work/nobitmap.qcow2")
  rss_delta() { awk -v a="$(rss_kib "$1")" -v b="$base" 'BEGIN { printf "%.1f", (a - b) / 1024 }'; }
  q_rss_empty=$(rss_delta "$work/empty.qcow2")
  q_rss_full=$(rss_delta "$dirty")
  q_rss_dense=$(rss_delta "$work/dense.qcow2")
fi

# ---------------------------------------------------------------- table
f1() { awk -v v="$1" 'BEGIN { printf "%.1f", v }'; }
f2() { awk -v v="$1" 'BEGIN { printf "%.2f", v }'; }
f3() { awk -v v="$1" 'BEGIN { printf "%.3f", v }'; }
ratio() { awk -v q="$1" -v j="$2" 'BEGIN { printf "%.1f", q / j }'; }
rawratio() { awk -v q="$1" -v j="$2" 'BEGIN { print q / j }'; }
# met A OP B: "**met**" when the numeric comparison A OP B holds (OP: >= or <), else "**missed**"
met() { if awk -v a="$1" -v b="$3" "BEGIN { exit !(a $2 b) }"; then echo "**met**"; else echo "**missed**"; fi; }

full=$(score fullStore); full_copy=$(score fullStoreCopy); dense=$(score fullStoreDense)
one_ms=$(awk -v v="$(score oneClusterStore)" 'BEGIN { print v / 1000 }')
tc=$(score trackClean); tl=$(score trackCleanLocal); ts=$(score trackSequential); td=$(score trackDirty)
wn=$(score writeNoBitmap); wb=$(score writeWithBitmap)
read -r h_empty h_empty_r <<< "$(heap empty)"
read -r h_full h_full_r <<< "$(heap full)"
read -r h_dense h_dense_r <<< "$(heap dense)"

echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(uname -sr)"
echo "Filesystem of the images: $(findmnt -n -o FSTYPE -T "$work" 2>/dev/null || echo '?') on $(findmnt -n -o SOURCE -T "$work" 2>/dev/null || echo '?')"
echo "Java: $(java -version 2>&1 | head -2 | tail -1)"
echo "QEMU: $(qemu-io --version | head -1); $(strace -V 2>/dev/null | head -1 || echo 'no strace')"
echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average (1/5/15 min) at start $load_before, at end $(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="${load_before%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n) }'; then
  echo "**Warning: the load average at start exceeded the CPU count; other work shared the machine.**"
fi
echo "Image: qcow2, 16 TiB virtual, 2 MiB clusters; bitmap b0, 64 KiB granularity, 2^28 bits = 32 MiB (16 clusters); the fully dirty image made by qemu-io in $make_secs s"
echo "fdatasync floor of this filesystem (python pwrite + fdatasync, median): 4 KiB $floor_4k ms; 2 MiB $floor_2m ms; 32 MiB $floor_32m ms"
echo "QEMU cross-check: $hf"
echo
echo "qcow4j figures are medians: of every timed store (JMH SampleTime) or of the 5 iteration scores (ns rows). QEMU store figures: median of $runs interleaved (rw − ro) pairs."
echo
echo "| measurement | qcow4j | QEMU | target |"
echo "|---|---:|---:|---|"
echo "| store, fully dirty bitmap, every cluster changed, in_use held (\`fullStore\`; $(written fullStore) MiB written per store) | $(f1 "$full") ms | $q_full ms (rw $q_full_rw − ro $q_full_ro; strace: $q_nw pwrite calls $q_pw ms, $q_ns fdatasync $q_sync ms) | ≥ 5× faster than QEMU: $(ratio "$q_full" "$full")× $(met "$(rawratio "$q_full" "$full")" ">=" 5) |"
echo "| same, in_use not held: written as a new copy, like QEMU (\`fullStoreCopy\`; $(written fullStoreCopy) MiB) | $(f1 "$full_copy") ms | $q_full ms | ≥ 5×: $(ratio "$q_full" "$full_copy")× $(met "$(rawratio "$q_full" "$full_copy")" ">=" 5) |"
echo "| store, dense bitmap (every other bit set), every cluster changed (\`fullStoreDense\`; $(written fullStoreDense) MiB) | $(f1 "$dense") ms | $q_dense ms (same measurement on the dense image) | ≥ 5×: $(ratio "$q_dense" "$dense")× $(met "$(rawratio "$q_dense" "$dense")" ">=" 5) |"
echo "| store after one 64 KiB guest write (\`oneClusterStore\`; $(written oneClusterStore) MiB) | $(f2 "$one_ms") ms | $q_one ms (same measurement on an image with one bit set: one 2 MiB cluster) | < 1 ms $(met "$one_ms" "<" 1) |"
echo "| dirty tracking of one 64 KiB write: random offsets over the 16 TiB, bitmap cleared each iteration (\`trackClean\`; one cache miss per write)  | $(f1 "$tc") ns | – | < 50 ns $(met "$tc" "<" 50) |"
echo "| dirty tracking: random offsets within the first 64 GiB (128 KiB of bitmap, cached), bitmap cleared each iteration (\`trackCleanLocal\`) | $(f1 "$tl") ns | – | < 50 ns $(met "$tl" "<" 50) |"
echo "| dirty tracking: consecutive offsets, bitmap cleared each iteration (\`trackSequential\`) | $(f1 "$ts") ns | – | < 50 ns $(met "$ts" "<" 50) |"
echo "| dirty tracking: random offsets, fully dirty bitmap (\`trackDirty\`) | $(f1 "$td") ns | – | < 50 ns $(met "$td" "<" 50) |"
echo "| one 64 KiB overwrite: no bitmap / enabled bitmap (\`writeNoBitmap\` / \`writeWithBitmap\`) | $(f1 "$wn") / $(f1 "$wb") ns (difference $(awk -v a="$wb" -v b="$wn" 'BEGIN { printf "%+.0f", a - b }') ns) | – | (the tracking share of a write) |"
echo "| heap of one empty bitmap (measured over 20; \`heapBytes()\` in brackets) | $(f3 "$h_empty") MiB ($(f3 "$h_empty_r")) | max RSS +$q_rss_empty MiB | < 1 MiB $(met "$h_empty" "<" 1) |"
echo "| heap of one fully dirty bitmap (all ones) | $(f3 "$h_full") MiB ($(f3 "$h_full_r")) | max RSS +$q_rss_full MiB | – |"
echo "| heap of one dense bitmap (every other bit set; the worst case) | $(f3 "$h_dense") MiB ($(f3 "$h_dense_r")) | max RSS +$q_rss_dense MiB | – |"
echo
echo "JMH means (± 99.9% error) of the same run:"
echo
echo '```'
grep -E '^Benchmark +Mode|^BitmapFlushBenchmark\.[A-Za-z]+ ' "$out/jmh.log" || true
echo '```'
