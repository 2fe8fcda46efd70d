#!/usr/bin/env bash
# Whole-process times of qcow4j (bin/qcow4j, JVM start included) beside qemu-img, same
# images, same run, interleaved (qemu-img, qcow4j, qemu-img, qcow4j, ...); median of RUNS
# (default 3) and the peak memory (max RSS) of the median run. Markdown table on stdout,
# progress on stderr. The page cache is warm (every input is read once before).
#
# Images (in a temporary directory, removed at the end; WORK=dir keeps them there):
#   disk.raw      SIZE (default 1G) of base64 text (every cluster data, compressible ~4:3)
#   disk.qcow2    the same as qcow2 (qemu-img convert)
#   zlib.qcow2    the same compressed with zlib, zstd.qcow2 with zstd
#   big.qcow2     16 TiB, 2 MiB clusters, every cluster a zero cluster, with a fully dirty
#                 persistent bitmap of 64 KiB granularity (32 MiB), as jmh/run-bitmap-flush.sh
# Usage: jmh/compare-qemu.sh [RUNS]      ROWS="convert-qcow2 convert-raw ..." to pick rows.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=${1:-3}
size=${SIZE:-1G}
work=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/qcow4j-compare.XXXXXX")}
[ -z "${WORK:-}" ] && trap 'rm -rf "$work"' EXIT
qcow4j=${QCOW4J:-$root/bin/qcow4j}   # QCOW4J=other/bin/qcow4j measures another build
log() { echo "compare-qemu: $*" >&2; }
all="convert-qcow2 convert-raw convert-zlib convert-zstd convert-c compare check info"
rows=${ROWS:-$all}

cd "$work"
if [ ! -f disk.raw ]; then
  log "making the images ($size) in $work"
  bytes=$(numfmt --from=iec "$size")
  head -c $((bytes * 3 / 4)) /dev/urandom | base64 -w 0 | head -c "$bytes" >disk.raw
  truncate -s "$bytes" disk.raw
fi
[ -f disk.qcow2 ] || qemu-img convert -O qcow2 disk.raw disk.qcow2
[ -f zlib.qcow2 ] || qemu-img convert -c -O qcow2 -o compression_type=zlib disk.raw zlib.qcow2
[ -f zstd.qcow2 ] || qemu-img convert -c -O qcow2 -o compression_type=zstd disk.raw zstd.qcow2
if [ ! -f big.qcow2 ]; then
  # as jmh/run-bitmap-flush.sh: 2 MiB clusters, a zero write over the whole disk dirties every bit
  qemu-img create -q -f qcow2 -o cluster_size=2M big.qcow2 16T
  qemu-img bitmap --add -g 64k big.qcow2 b0
  qemu-io -c 'write -z -n 0 16T' big.qcow2 >/dev/null
fi
cat disk.raw disk.qcow2 zlib.qcow2 zstd.qcow2 big.qcow2 >/dev/null
"$qcow4j" info disk.qcow2 >/dev/null # builds the CLI jar if needed

# one timed run: prints "seconds maxrss_kib cpu_seconds"; the output file is removed before
timed() { # out-file-or-- command...
  [ "$1" != -- ] && rm -f "$1"
  /usr/bin/time -f "%e %M %U %S" -o "$work/.time" "${@:2}" >/dev/null 2>"$work/.err" \
    || { echo "compare-qemu: failed: ${*:2}" >&2; cat "$work/.err" >&2; exit 1; }
  awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }' "$work/.time"
}

cmd() { # row tool: the command line of a row for qemu-img or bin/qcow4j
  local t=$2
  case $1 in
    convert-qcow2) echo "out.qcow2 $t convert -O qcow2 disk.raw out.qcow2" ;;
    convert-raw)   echo "out.raw $t convert -O raw disk.qcow2 out.raw" ;;
    convert-zlib)  echo "out.raw $t convert -O raw zlib.qcow2 out.raw" ;;
    convert-zstd)  echo "out.raw $t convert -O raw zstd.qcow2 out.raw" ;;
    convert-c)     echo "out.qcow2 $t convert -c -O qcow2 disk.raw out.qcow2" ;;
    compare)       echo "-- $t compare disk.qcow2 disk.raw" ;;
    check)         echo "-- $t check big.qcow2" ;;
    info)          echo "-- $t info disk.qcow2" ;;
  esac
}
label() {
  case $1 in
    convert-qcow2) echo '`convert -O qcow2` raw → qcow2' ;;
    convert-raw)   echo '`convert -O raw` qcow2 → raw' ;;
    convert-zlib)  echo '`convert -O raw` of a zlib-compressed image' ;;
    convert-zstd)  echo '`convert -O raw` of a zstd-compressed image' ;;
    convert-c)     echo '`convert -c -O qcow2` raw → compressed qcow2 (zlib)' ;;
    compare)       echo '`compare` qcow2 vs raw' ;;
    check)         echo '`check` of a 16 TiB image with a 32 MiB bitmap' ;;
    info)          echo '`info`' ;;
  esac
}
median() { # column: the median line by that column
  sort -n -k"$1,$1" | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'
}

echo "| command | qcow4j | qemu-img | ratio | qcow4j CPU | qemu-img CPU | CPU ratio | qcow4j memory | qemu-img memory |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for r in $rows; do
  log "$r"
  : >"$work/.q" ; : >"$work/.o"
  for ((i = 0; i < runs; i++)); do
    # shellcheck disable=SC2046
    timed $(cmd "$r" qemu-img) >>"$work/.q"
    # shellcheck disable=SC2046
    timed $(cmd "$r" "$qcow4j") >>"$work/.o"
  done
  read -r qs qm _ < <(median 1 <"$work/.q")
  read -r os om _ < <(median 1 <"$work/.o")
  read -r _ _ qc < <(median 3 <"$work/.q")
  read -r _ _ oc < <(median 3 <"$work/.o")
  awk -v l="$(label "$r")" -v os="$os" -v qs="$qs" -v om="$om" -v qm="$qm" -v oc="$oc" -v qc="$qc" 'BEGIN {
    # (a qemu-img time below the 10 ms resolution of time(1) gives no ratio)
    r = qs > 0 ? sprintf("%.2f", os / qs) : "-"; rc = qc > 0 ? sprintf("%.2f", oc / qc) : "-"
    printf "| %s | %.2f s | %.2f s | %s | %.2f s | %.2f s | %s | %d MiB | %d MiB |\n", l, os, qs, r,
      oc, qc, rc, om / 1024, qm / 1024 }'
done
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo
echo "Machine: $(nproc) CPUs ($cpu), $(date -u +%Y-%m-%d), $(java -version 2>&1 | head -1), $(qemu-img --version | head -1); $size of data in $work, median of $runs, page cache warm; times are wall clock of the whole process, CPU is user + system; ratio = qcow4j / qemu-img; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
