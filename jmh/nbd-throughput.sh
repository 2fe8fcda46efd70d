#!/usr/bin/env bash
# nbdcopy of a 2 GiB qcow2 image (64 KiB clusters, every cluster written) from
# `qcow4j nbd` and from `qemu-nbd`, same image, same machine, same run (README, "NBD").
# Both serve read-only with -e 4 (so both advertise multi-conn and nbdcopy opens 4
# connections); a second pair with -e 1 measures one connection. The image is in the page
# cache (read once before). Needs hyperfine, nbdcopy (libnbd-bin), qemu-utils.
# Usage: jmh/nbd-throughput.sh [RUNS] [SIZE]     (defaults 10, 2G)
# Extra hyperfine options: HYPERFINE_OPTS (e.g. "--export-json out.json").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-10}"
size="${2:-2G}"
# shellcheck source=nbd-image.sh
source "$root/jmh/nbd-image.sh"

serve() { # serve NAME SHARED: starts the server, sets $uri
  local sock="$dir/$1-$2.sock"
  if [ "$1" = qemu ]; then
    qemu-nbd -t -r -f qcow2 -e "$2" -k "$sock" "$img" >/dev/null 2>&1 &
  else
    "$root/bin/qcow4j" nbd -t -r -f qcow2 -e "$2" -k "$sock" "$img" >/dev/null 2>&1 &
  fi
  pids+=($!)
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
  uri="nbd+unix:///?socket=$sock"
}
serve qemu 4; q4=$uri
serve qcow4j 4; o4=$uri
serve qemu 1; q1=$uri
serve qcow4j 1; o1=$uri
# shellcheck disable=SC2086
hyperfine -N -w 2 -r "$runs" ${HYPERFINE_OPTS:-} \
  -n "qemu-nbd -e 4" "nbdcopy $q4 null:" \
  -n "qcow4j nbd -e 4" "nbdcopy $o4 null:" \
  -n "qemu-nbd -e 1" "nbdcopy $q1 null:" \
  -n "qcow4j nbd -e 1" "nbdcopy $o1 null:"
echo "MB/s = $bytes / mean seconds / 1e6 (bytes: $bytes)"
