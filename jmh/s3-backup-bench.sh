#!/usr/bin/env bash
# Backup to S3-compatible storage next to a backup of the same data into a local directory:
# wall time, throughput and the CLI's heap, as a markdown table on stdout (progress on
# stderr).
#
#   1. a qcow2 image of BENCH_DATA_GIB (default 4) GiB, all of it data (qemu-io);
#   2. S3Proxy (jclouds filesystem backend, under WORK) on 127.0.0.1, started from
#      qcow2-backup-s3's test classes (io.qcow4j.backup.s3.S3ServerMain);
#   3. bin/qcow4j backup --level copy --format stream into a local directory, then into
#      s3://bench/PREFIX (AWS_* variables point the SDK at the local server), each under
#      -Xmx256m with a GC log (see heap() below for what the figures are);
#   4. restore -O raw of each set.
#
# Every run includes the JVM's start. The local backup ends with fsync; the S3 backup ends
# when the server has acknowledged the completed upload (S3Proxy's filesystem backend then
# holds it in the page cache: it does not fsync). Both write to the same disk. Environment:
# BENCH_DATA_GIB, WORK (room for about 5 x BENCH_DATA_GIB; default a temporary directory,
# removed at the end).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data_gib=${BENCH_DATA_GIB:-4}
work=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/qcow4j-s3-bench.XXXXXX")}
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  if [ -z "${WORK:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
qcow4j="$root/bin/qcow4j"
log() { echo "s3-backup-bench: $*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }
# heap from a unified GC log ("... Pause Young ... 70M->45M(247M) ..."): the most in use when a
# collection started (what the run allocated up to, bounded by -Xmx) and the most left after a
# full collection (what it holds; after a young one, old garbage not yet collected counts too,
# so when no full collection ran that figure is marked "<=")
heap() { awk '/->/ { match($0, /[0-9]+M->[0-9]+M/); split(substr($0, RSTART, RLENGTH), v, "M->");
    b = v[1] + 0; a = v[2] + 0; n++; if (b > mb) mb = b; if (a > ma) ma = a;
    if ($0 ~ /Pause Full/) { full = 1; if (a > mf) mf = a } }
  END { if (!n) { printf "no collection"; exit }
        if (full) printf "%d MiB / %d MiB", mb, mf; else printf "%d MiB / <= %d MiB", mb, ma }' "$1"; }

# the class path of qcow2-tools' tests (the last module built) holds S3Proxy and qcow2-backup-s3's
log "building (qcow2-tools jar, qcow2-backup-s3 test classes and class path)"
(cd "$root" && mvn -B -q -o -pl qcow2-tools,qcow2-backup-s3 -am -DskipTests -Dqcow4j.cds.skip package \
  dependency:build-classpath -Dmdep.outputFile="$work/cp.txt" -Dmdep.includeScope=test) >&2
cp="$root/qcow2-backup-s3/target/test-classes:$root/qcow2-backup-s3/target/classes:$(cat "$work/cp.txt")"

img="$work/disk.qcow2"
log "image: $data_gib GiB of data in $work"
qemu-img create -q -f qcow2 "$img" "${data_gib}G"
writes=()   # qemu-io takes at most 2 GiB per request: 1 GiB each
for ((g = 0; g < data_gib; g++)); do writes+=(-c "write -P 0x5a ${g}G 1G"); done
qemu-io -f qcow2 "${writes[@]}" "$img" >/dev/null
sync
bytes=$((data_gib << 30))

log "starting S3Proxy"
mkfifo "$work/server-in"
java -cp "$cp" io.qcow4j.backup.s3.S3ServerMain "$work/s3" bench <"$work/server-in" >"$work/server.out" 2>&1 &
server_pid=$!
exec 7>"$work/server-in"   # the server runs until this closes
for _ in $(seq 1 300); do grep -q ENDPOINT "$work/server.out" && break; sleep 0.1; done
endpoint=$(awk '/^ENDPOINT/ { print $2 }' "$work/server.out")
[ -n "$endpoint" ] || { cat "$work/server.out" >&2; exit 1; }
export AWS_ACCESS_KEY_ID=qcow4j-test-access AWS_SECRET_ACCESS_KEY=qcow4j-test-secret-key AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="$endpoint"

run() { # gc-log, command...: prints seconds
  local t0 t1
  t0=$(now); QCOW4J_JAVA_OPTS="-Xmx256m -Xlog:gc:file=$1" "${@:2}" >/dev/null; t1=$(now)
  secs "$t0" "$t1"
}

"$qcow4j" info "$img" >/dev/null
log "backup into a local directory"
t_local=$(run "$work/gc-local.log" "$qcow4j" backup --level copy --format stream "$img" "$work/set")
log "backup into s3://bench/vm"
t_s3=$(run "$work/gc-s3.log" "$qcow4j" backup --level copy "$img" s3://bench/vm)
log "restores"
t_rl=$(run "$work/gc-rl.log" "$qcow4j" restore -O raw "$work/set" "$work/r-local.raw")
rm -f "$work/r-local.raw"
t_rs=$(run "$work/gc-rs.log" "$qcow4j" restore -O raw s3://bench/vm "$work/r-s3.raw")
cmp_ok=$(qemu-img compare -q -f raw -F qcow2 "$work/r-s3.raw" "$img" && echo equal || echo DIFFERENT)

echo "| $data_gib GiB of data, stream format | seconds | MiB/s | heap (-Xmx256m): most in use / most live after a full GC |"
echo "|---|---:|---:|---|"
echo "| backup into a local directory | $t_local | $(rate $bytes "$t_local") | $(heap "$work/gc-local.log") |"
echo "| backup into s3:// (S3Proxy on 127.0.0.1) | $t_s3 | $(rate $bytes "$t_s3") | $(heap "$work/gc-s3.log") |"
echo "| restore -O raw from the local directory | $t_rl | $(rate $bytes "$t_rl") | $(heap "$work/gc-rl.log") |"
echo "| restore -O raw from s3:// ($cmp_ok to the source) | $t_rs | $(rate $bytes "$t_rs") | $(heap "$work/gc-rs.log") |"
