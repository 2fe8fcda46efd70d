#!/usr/bin/env bash
# Start-up time of `bin/qcow4j info` against `qemu-img info` (jmh/STARTUP.md).
# Needs hyperfine (apt-get install -y hyperfine). Usage: jmh/startup.sh [RUNS]
# Extra hyperfine options: HYPERFINE_OPTS (e.g. "--export-json out.json").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-30}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
qemu-img create -q -f qcow2 "$dir/disk.qcow2" 1G
qemu-io -c "write -P 0x5a 0 1M" "$dir/disk.qcow2" >/dev/null
"$root/bin/qcow4j" info "$dir/disk.qcow2" >/dev/null # builds the jar (and the CDS archive) if needed
# shellcheck disable=SC2086
hyperfine -N -w 3 -r "$runs" ${HYPERFINE_OPTS:-} \
  -n "qcow4j info" "$root/bin/qcow4j info $dir/disk.qcow2" \
  -n "qcow4j info --output=json" "$root/bin/qcow4j info --output=json $dir/disk.qcow2" \
  -n "qemu-img info" "qemu-img info $dir/disk.qcow2" \
  -n "java -version" "java -Xshare:auto -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData -version"
