#!/usr/bin/env bash
# Guest I/O throughput of qcow4j (JMH, io.qcow4j.jmh.ReadWriteBenchmark) next to
# `qemu-img bench` on the same machine, as a markdown table on stdout:
#   operation | qcow4j MB/s | qemu-img bench MB/s       (MB = MiB = 2^20 bytes)
#
# Both sides: qcow2, 64 KiB clusters, 2 GiB virtual disk, 64 KiB requests, cluster-aligned,
# queue depth 1, through the host page cache (qcow4j has no O_DIRECT; qemu gets -t writeback,
# which with the default aio=threads means plain pread/pwrite; -n, native AIO, would need
# -t none and is not used). Nothing is flushed inside a timed run on either side.
#
# Environment:
#   BENCH_SIZE  virtual disk size in bytes (default 2147483648); smaller for a smoke run
#   JMH_ARGS    extra JMH options, e.g. "-wi 0 -i 1 -r 1" (smoke run) or a benchmark regexp
#   NO_BUILD=1  use the existing jmh/target/benchmarks.jar instead of rebuilding it
#   OUT         directory for the raw logs (default jmh/target/run-readwrite)
# Progress goes to stderr; the machine description and the table go to stdout.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
size=${BENCH_SIZE:-2147483648}
bs=65536
clusters=$((size / bs))
size_mib=$((size >> 20))
if [ $((size % bs)) -ne 0 ] || [ "$clusters" -lt 1 ]; then
  echo "run-readwrite: BENCH_SIZE must be a positive multiple of 64 KiB" >&2; exit 1
fi
# Stride of qemu's "random" runs: an odd number of clusters, so with a power-of-two cluster
# count every cluster is visited exactly once per pass (qemu-img bench wraps offsets modulo
# the disk size).
stride=$(( (10007 % clusters) * bs ))
[ "$stride" -eq 0 ] && stride=$bs
out=${OUT:-$root/jmh/target/run-readwrite}
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/qcow4j-rw.XXXXXX")
trap 'rm -rf "$work"' EXIT
log() { echo "run-readwrite: $*" >&2; }

# ---------------------------------------------------------------- qcow4j (JMH)
if [ "${NO_BUILD:-0}" != 1 ]; then
  log "building jmh/target/benchmarks.jar"
  (cd "$root" && mvn -q -B -DskipTests package -pl jmh -am) >&2
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "JMH: io.qcow4j.jmh.ReadWriteBenchmark (log: $out/jmh.log)"
# shellcheck disable=SC2086
"$root/bin/jmh" 'io\.qcow4j\.jmh\.ReadWriteBenchmark\.' -rf json -rff "$out/jmh.json" \
    -jvmArgsAppend "-Dqcow4j.jmh.size=$size -Dqcow4j.jmh.dir=$work" ${JMH_ARGS:-} \
    > "$out/jmh.log" 2>&1 || { tail -40 "$out/jmh.log" >&2; log "JMH failed"; exit 1; }
grep -E '# fill|^Benchmark|^ReadWriteBenchmark' "$out/jmh.log" >&2 || true

# MiB/s of one JMH benchmark: ops/s / 16 (throughput), or MiB per pass / s per pass (single shot)
jmh_mibs() {
  jq -r --arg b "io.qcow4j.jmh.ReadWriteBenchmark.$1" --argjson mib "$size_mib" --argjson bs "$bs" '
    .[] | select(.benchmark == $b) |
    if .mode == "thrpt" then .primaryMetric.score * $bs / 1048576
    else $mib / .primaryMetric.score end' "$out/jmh.json" | head -1
}

# ---------------------------------------------------------------- qemu-img bench
: > "$out/qemu.log"
# qbench COUNT ARGS... : runs qemu-img bench, prints the seconds it reports
qbench() {
  local count=$1; shift
  local cmd=(qemu-img bench -f qcow2 -t writeback -d 1 -s 64k -c "$count" "$@")
  local o secs
  echo "\$ ${cmd[*]}" >> "$out/qemu.log"
  o=$("${cmd[@]}" 2>&1) || { echo "$o" >> "$out/qemu.log"; log "failed: ${cmd[*]}"; echo "$o" >&2; return 1; }
  echo "$o" >> "$out/qemu.log"
  secs=$(echo "$o" | sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p')
  [ -n "$secs" ] || { log "no timing from: ${cmd[*]}"; return 1; }
  echo "$secs"
}
mibs() { awk -v mib="$1" -v s="$2" 'BEGIN { printf "%.1f", mib / s }'; }
fresh() { rm -f "$1"; qemu-img create -q -f qcow2 -o cluster_size=64k "$1" "$size"; echo "\$ qemu-img create -q -f qcow2 -o cluster_size=64k IMG $size" >> "$out/qemu.log"; }

log "qemu-img bench (log: $out/qemu.log)"
full="$work/qemu-full.qcow2"
scratch="$work/qemu-scratch.qcow2"
# allocating: one pass over a fresh image; the sequential pass leaves $full fully written
fresh "$full"
q_seq_alloc=$(mibs "$size_mib" "$(qbench "$clusters" -w -S 64k --pattern=0xa5 "$full")")
fresh "$scratch"
q_rnd_alloc=$(mibs "$size_mib" "$(qbench "$clusters" -w -S "$stride" --pattern=0xa5 "$scratch")")
rm -f "$scratch"
# on the fully written image: 4 passes of reads, 2 passes of overwrites
q_seq_read=$(mibs $((4 * size_mib)) "$(qbench $((4 * clusters)) -S 64k "$full")")
q_rnd_read=$(mibs $((4 * size_mib)) "$(qbench $((4 * clusters)) -S "$stride" "$full")")
q_seq_over=$(mibs $((2 * size_mib)) "$(qbench $((2 * clusters)) -w -S 64k --pattern=0x5a "$full")")
q_rnd_over=$(mibs $((2 * size_mib)) "$(qbench $((2 * clusters)) -w -S "$stride" --pattern=0x5a "$full")")
qemu-img check -q "$full" >> "$out/qemu.log" 2>&1 || log "warning: qemu-img check of the qemu image failed"

# ---------------------------------------------------------------- table
fmt() { awk -v v="$1" 'BEGIN { printf "%.1f", v }'; }
echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(uname -sr)"
echo "Filesystem of the images: $(findmnt -n -o FSTYPE -T "$work" 2>/dev/null || echo '?')"
echo "Java: $(java -version 2>&1 | head -2 | tail -1)"
echo "qemu-img: $(qemu-img --version | head -1)"
echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average (1/5/15 min) at start $load_before, at end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Image: qcow2, 64 KiB clusters, $size_mib MiB; 64 KiB requests, queue depth 1; MB = MiB"
echo
echo "| operation | qcow4j MB/s | qemu-img bench MB/s |"
echo "|---|---:|---:|"
echo "| sequential read | $(fmt "$(jmh_mibs seqRead)") | $q_seq_read |"
echo "| random read (qemu: strided) | $(fmt "$(jmh_mibs randomRead)") | $q_rnd_read |"
echo "| sequential write, allocating (fresh image, one pass) | $(fmt "$(jmh_mibs seqWriteAllocating)") | $q_seq_alloc |"
echo "| random write, allocating (fresh image, one pass; qemu: strided) | $(fmt "$(jmh_mibs randomWriteAllocating)") | $q_rnd_alloc |"
echo "| sequential write, overwrite (fully written image) | $(fmt "$(jmh_mibs seqWriteOverwrite)") | $q_seq_over |"
echo "| random write, overwrite (fully written image; qemu: strided) | $(fmt "$(jmh_mibs randomWriteOverwrite)") | $q_rnd_over |"
