#!/usr/bin/env bash
# CPU time the server spends per nbdcopy of a 2 GiB qcow2 image (64 KiB clusters, every
# cluster written), `qcow4j nbd` and `qemu-nbd`, same image, same run (README, "NBD"):
# utime+stime of the server process from /proc/PID/stat over COPIES copies to null:, and
# the wall time per copy. ROUNDS rounds interleave the servers. Needs nbdcopy, qemu-utils.
# Usage: jmh/nbd-cpu.sh [COPIES] [ROUNDS] [SIZE]     (defaults 5, 3, 2G)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
copies="${1:-5}"
rounds="${2:-3}"
size="${3:-2G}"
# shellcheck source=nbd-image.sh
source "$root/jmh/nbd-image.sh"
hz=$(getconf CLK_TCK)
names=()
declare -A pid sock
serve() { # serve NAME SHARED
  local s="$dir/${1%% *}-$2.sock" key="$1 -e $2"
  if [ "$1" = qemu-nbd ]; then
    qemu-nbd -t -r -f qcow2 -e "$2" -k "$s" "$img" >/dev/null 2>&1 &
  else
    # exec: the java process is the one measured
    bash -c 'exec "$0" nbd -t -r -f qcow2 -e "$1" -k "$2" "$3"' "$root/bin/qcow4j" "$2" "$s" "$img" >/dev/null 2>&1 &
  fi
  pids+=($!)
  pid[$key]=$!
  sock[$key]=$s
  names+=("$key")
  for _ in $(seq 100); do [ -S "$s" ] && break; sleep 0.1; done
}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
serve qemu-nbd 4; serve "qcow4j nbd" 4; serve qemu-nbd 1; serve "qcow4j nbd" 1
for key in "${names[@]}"; do nbdcopy "nbd+unix:///?socket=${sock[$key]}" null:; done # warm-up
for ((r = 1; r <= rounds; r++)); do
  for key in "${names[@]}"; do
    t0=$(cpu "${pid[$key]}"); s0=$(date +%s%N)
    for ((i = 0; i < copies; i++)); do nbdcopy "nbd+unix:///?socket=${sock[$key]}" null:; done
    t1=$(cpu "${pid[$key]}"); s1=$(date +%s%N)
    awk -v k="$key" -v r="$r" -v c=$(( t1 - t0 )) -v w=$(( s1 - s0 )) -v n="$copies" -v hz="$hz" \
      'BEGIN { printf "round %d  %-16s cpu/copy %.3f s  wall/copy %.3f s\n", r, k, c / hz / n, w / 1e9 / n }'
  done
done
uptime
