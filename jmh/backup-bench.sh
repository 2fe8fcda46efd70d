#!/usr/bin/env bash
# Incremental backup of a large sparse image with 1 % of it changed, next to a full backup
# and to `qemu-img convert` of the same disk: wall time and bytes written, as a markdown
# table on stdout (progress on stderr).
#
#   1. a qcow2 image of BENCH_SIZE_GIB (default 64) GiB with BENCH_DATA_GIB (default 4) GiB of
#      data, in 64 MiB runs spread over the disk (qemu-io);
#   2. full backups into a qcow2 set and a stream set (bin/qcow4j backup --level full);
#   3. 1 % of the disk rewritten by qemu-io in 1 MiB writes at pseudo-random offsets
#      (some land where there was no data), which QEMU records in the checkpoints;
#   4. incremental backups into both sets; `qemu-img convert -O qcow2` of the whole disk.
#
# Every run includes the JVM's start (bin/qcow4j) and ends with the data flushed (the backup
# fsyncs its file; qemu-img convert is followed by sync). The page cache is warm: the image
# was just written. Environment: BENCH_SIZE_GIB, BENCH_DATA_GIB, WORK (a directory with room
# for about 4 x BENCH_DATA_GIB; default a temporary one, removed at the end).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
size_gib=${BENCH_SIZE_GIB:-64}
data_gib=${BENCH_DATA_GIB:-4}
work=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/qcow4j-backup-bench.XXXXXX")}
[ -z "${WORK:-}" ] && trap 'rm -rf "$work"' EXIT
qcow4j="$root/bin/qcow4j"
log() { echo "backup-bench: $*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
bytes() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

img="$work/disk.qcow2"
log "image: $size_gib GiB, $data_gib GiB of data, in $work"
qemu-img create -q -f qcow2 "$img" "${size_gib}G"
cmds=()
runs=$((data_gib * 16))                      # 64 MiB runs
step=$(( (size_gib << 10) / runs ))          # MiB between runs
for ((i = 0; i < runs; i++)); do
  cmds+=(-c "write -P $(( (i % 250) + 1 )) $((i * step))M 64M")
done
qemu-io -f qcow2 "${cmds[@]}" "$img" >/dev/null
sync

run() { # label, command...: prints "seconds"
  local t0 t1
  t0=$(now); "${@:2}" >/dev/null; sync; t1=$(now)
  secs "$t0" "$t1"
}

"$qcow4j" info "$img" >/dev/null   # builds the CLI jar if needed, outside the timings
log "full backups"
t_full_q=$(run full-qcow2 "$qcow4j" backup --level full "$img" "$work/set-qcow2")
t_full_s=$(run full-stream "$qcow4j" backup --level full --format stream "$img" "$work/set-stream")
b_full_q=$(bytes "$work/set-qcow2/disk.001.full.qcow2")
b_full_s=$(bytes "$work/set-stream/disk.001.full.data")

changed_mib=$(( (size_gib << 10) / 100 ))
log "changing $changed_mib MiB (1 %) in 1 MiB writes"
cmds=()
seed=12345
for ((i = 0; i < changed_mib; i++)); do
  seed=$(( (seed * 1103515245 + 12345) % 2147483648 ))
  cmds+=(-c "write -P $(( (i % 200) + 50 )) $(( seed % ((size_gib << 10)) ))M 1M")
done
qemu-io -f qcow2 "${cmds[@]}" "$img" >/dev/null
sync

log "incremental backups"
t_inc_q=$(run inc-qcow2 "$qcow4j" backup --level inc "$img" "$work/set-qcow2")
t_inc_s=$(run inc-stream "$qcow4j" backup --level inc "$img" "$work/set-stream")
b_inc_q=$(bytes "$work/set-qcow2/disk.002.inc.qcow2")
b_inc_s=$(bytes "$work/set-stream/disk.002.inc.data")
log "qemu-img convert"
t_conv=$(run convert qemu-img convert -O qcow2 "$img" "$work/convert.qcow2")
b_conv=$(bytes "$work/convert.qcow2")
log "verify and restore check"
"$qcow4j" verify "$work/set-qcow2" >/dev/null
"$qcow4j" restore "$work/set-stream" "$work/restored.qcow2"
qemu-img compare -q "$img" "$work/restored.qcow2"

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "Machine: $(nproc) CPUs ($cpu), $(date -u +%Y-%m-%d); disk of $size_gib GiB with $data_gib GiB of data, $changed_mib MiB (1 %) changed."
echo
echo "| operation | time (s) | written (MiB) |"
echo "|---|---:|---:|"
echo "| qcow4j backup --level full (qcow2) | $t_full_q | $(mib "$b_full_q") |"
echo "| qcow4j backup --level full --format stream | $t_full_s | $(mib "$b_full_s") |"
echo "| qcow4j backup --level inc (qcow2), 1 % changed | $t_inc_q | $(mib "$b_inc_q") |"
echo "| qcow4j backup --level inc (stream), 1 % changed | $t_inc_s | $(mib "$b_inc_s") |"
echo "| qemu-img convert -O qcow2 (the whole disk) | $t_conv | $(mib "$b_conv") |"
