# Sourced by jmh/nbd-throughput.sh and jmh/nbd-cpu.sh (with $root and $size set): a
# temporary directory $dir removed on exit with the servers in $pids, and in it $img, a
# qcow2 image of $size (64 KiB clusters, every cluster written by qemu-io in 256 MiB
# pieces), $bytes long, read once so that it is in the page cache; the jar is built.
dir="$(mktemp -d /tmp/nbd-bench.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
img="$dir/disk.qcow2"
qemu-img create -q -f qcow2 -o cluster_size=64k "$img" "$size"
bytes=$(qemu-img info --output=json "$img" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')
step=$((256 << 20))
cmds=()
for ((off = 0; off < bytes; off += step)); do
  cmds+=(-c "write -P $(( (off / step) % 250 + 1 )) $off $(( bytes - off < step ? bytes - off : step ))")
done
qemu-io "${cmds[@]}" "$img" >/dev/null
"$root/bin/qcow4j" info "$img" >/dev/null # builds the jar if needed
cat "$img" >/dev/null
