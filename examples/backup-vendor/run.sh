#!/usr/bin/env bash
# Builds this example against the qcow4j artifacts in the local Maven repository (run
# `mvn install` in the checkout first) and runs it twice, as CI does (bin/test):
#   1. in a plain JVM, no flags: the engine maps metadata with the JDK's FileChannel.map
#      and says so once (a "qcow4j warning:" line on stderr);
#   2. with the --add-opens/--add-exports flags of bin/qcow4j: Chronicle Bytes maps it, no
#      warning.
# After each, qemu-img check must find the image clean and qemu-img info must show the
# bitmap. Any failure exits non-zero. Extra arguments go to mvn (e.g. -o).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"
mvn -B -q package "$@"
cp="$here/target/classes:$(cat "$here/target/classpath.txt")"
# the flags: bin/qcow4j's flags=( ... ) list, read as bin/jmh reads it
mapfile -t flags < <(sed -n '/^flags=(/,/^)/{/^flags=(/d;/^)/d;s/^[[:space:]]*//;s/[[:space:]]*$//;/^$/d;/^#/d;p}' "$root/bin/qcow4j")
[ "${#flags[@]}" -gt 0 ] || { echo "run.sh: no flags=( ... ) list in $root/bin/qcow4j" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

run() { # NAME WANT_WARNINGS JAVA_ARGS...
  local name="$1" want="$2"; shift 2
  local img="$work/$name.qcow2"
  echo "== $name: java ${*:-(no flags)} ..."
  java "$@" -cp "$cp" com.example.backupvendor.BackupVendor "$img" 2>"$work/$name.err" || {
    cat "$work/$name.err" >&2; echo "run.sh: $name: the example failed" >&2; exit 1; }
  cat "$work/$name.err" >&2
  local got
  got=$(grep -c '^qcow4j warning: ' "$work/$name.err" || true)
  [ "$got" = "$want" ] || { echo "run.sh: $name: $got warnings, expected $want" >&2; exit 1; }
  qemu-img check -q "$img" || { echo "run.sh: $name: qemu-img check failed" >&2; exit 1; }
  qemu-img info --output=json "$img" | grep -q '"name": "vendor-incremental"' ||
    { echo "run.sh: $name: qemu-img info shows no bitmap" >&2; qemu-img info "$img" >&2; exit 1; }
  qemu-io -f qcow2 -c 'read -P 3 100M 3M' "$img" >/dev/null ||
    { echo "run.sh: $name: qemu-io read of the data failed" >&2; exit 1; }
  echo "== $name: qemu-img check clean, bitmap in qemu-img info, data read back"
}
run plain-jvm 1
run with-flags 0 "${flags[@]}"
