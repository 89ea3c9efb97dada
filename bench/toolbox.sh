#!/usr/bin/env bash
# Speed and disk cost of `kiln toolbox`, as an unprivileged user.
#
#   floor : unshare --user --map-auto --map-root-user chroot ROOT true
#           (ROOT = the same unpacked image)
#   warm  : kiln toolbox run -c NAME true, container already running
#   cold  : kiln toolbox run -c NAME true right after kiln toolbox stop NAME
#   peers : toolbox run true / distrobox enter -- true, when installed
#   disk  : the shared image once, plus each container's own layer
#
# Usage: bench/toolbox.sh [RUNS] [CONTAINERS]
# As root it runs itself as $KILN_BENCH_USER (default kilntb, who needs
# /etc/subuid and /etc/subgid entries; the test suite creates that user).
# KILN=path/to/kiln picks the binary (default: target/release/kiln, else
# target/debug/kiln).
set -euo pipefail

RUNS=${1:-100}
NCONT=${2:-5}
cd "$(dirname "$0")/.."

if [ -z "${KILN:-}" ]; then
  if [ -x target/release/kiln ]; then KILN=$PWD/target/release/kiln; else KILN=$PWD/target/debug/kiln; fi
fi

if [ "$(id -u)" = 0 ] && [ -z "${KILN_BENCH_INNER:-}" ]; then
  user=${KILN_BENCH_USER:-kilntb}
  id "$user" >/dev/null 2>&1 || { echo "bench: user $user does not exist (run the toolbox tests first, or set KILN_BENCH_USER)" >&2; exit 1; }
  mkdir -p /var/cache/kiln-tests/bin /var/cache/kiln-tests/"$user"-data
  chmod 755 /var/cache/kiln-tests /var/cache/kiln-tests/bin
  chown "$user": /var/cache/kiln-tests/"$user"-data
  install -m 0755 "$KILN" /var/cache/kiln-tests/bin/kiln-bench
  install -m 0755 "$0" /var/cache/kiln-tests/bin/toolbox-bench.sh
  exec runuser -u "$user" -- env -i HOME="/home/$user" USER="$user" PATH=/usr/bin:/bin:/usr/sbin:/sbin \
    LANG=C.UTF-8 KILN_BENCH_INNER=1 KILN=/var/cache/kiln-tests/bin/kiln-bench \
    XDG_DATA_HOME=/var/cache/kiln-tests/"$user"-data \
    bash /var/cache/kiln-tests/bin/toolbox-bench.sh "$RUNS" "$NCONT"
fi

cd "$HOME"
NAME=bench-$$
names=("$NAME")
cleanup() { "$KILN" toolbox rm -f "${names[@]}" >/dev/null 2>&1 || true; }
trap cleanup EXIT

now() { date +%s%N; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# measure RUNS BEFORE-CMD -- CMD...: per-run times in µs; prints "median min".
# BEFORE-CMD (not timed) runs before each run; ":" for nothing.
measure() {
  local runs=$1 before=$2 t0 t1
  shift 3
  local times=()
  for _ in $(seq "$runs"); do
    $before >/dev/null 2>&1 || true
    t0=$(now); "$@"; t1=$(now)
    times+=($(( (t1 - t0) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)], a[1] }'
}

echo "kiln: $KILN   (load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores)"
"$KILN" toolbox create "$NAME" >/dev/null
IMAGE_ID=$("$KILN" toolbox list --json -i | sed -n 's/.*"id": "\(debian-[^"]*\)".*/\1/p' | head -1)
ROOT=${XDG_DATA_HOME:-$HOME/.local/share}/kiln/toolbox/images/$IMAGE_ID/rootfs
"$KILN" toolbox run -c "$NAME" true

for _ in 1 2 3; do unshare --user --map-auto --map-root-user chroot "$ROOT" true; done
read -r floor floor_min < <(measure "$RUNS" : -- unshare --user --map-auto --map-root-user chroot "$ROOT" true)
read -r warm warm_min < <(measure "$RUNS" : -- "$KILN" toolbox run -c "$NAME" true)
cold_runs=$(( RUNS < 30 ? RUNS : 30 ))
read -r cold cold_min < <(measure "$cold_runs" "$KILN toolbox stop $NAME" -- "$KILN" toolbox run -c "$NAME" true)

echo
printf '%-55s %9s %9s %7s\n' "run true ($RUNS runs; cold: $cold_runs)" "median µs" "min µs" "×floor"
printf '%-55s %9d %9d %7s\n' "floor: unshare --map-auto --map-root-user chroot" "$floor" "$floor_min" "1.00"
printf '%-55s %9d %9d %7s\n' "kiln toolbox run (running container)" "$warm" "$warm_min" "$(ratio "$warm" "$floor")"
printf '%-55s %9d %9d %7s\n' "kiln toolbox run (stopped: userns+mounts+init)" "$cold" "$cold_min" "$(ratio "$cold" "$floor")"

if command -v toolbox >/dev/null 2>&1 && toolbox list >/dev/null 2>&1; then
  toolbox run true >/dev/null 2>&1 || true
  read -r tb tb_min < <(measure 10 : -- toolbox run true)
  printf '%-55s %9d %9d %7s   kiln/toolbox %s\n' "toolbox run true" "$tb" "$tb_min" "$(ratio "$tb" "$floor")" "$(ratio "$warm" "$tb")"
else
  echo "toolbox: not installed or not usable here (needs podman); skipped"
fi
if command -v distrobox >/dev/null 2>&1; then
  read -r db db_min < <(measure 10 : -- distrobox enter -- true)
  printf '%-55s %9d %9d %7s   kiln/distrobox %s\n' "distrobox enter -- true" "$db" "$db_min" "$(ratio "$db" "$floor")" "$(ratio "$warm" "$db")"
else
  echo "distrobox: not installed; skipped"
fi

echo
for i in $(seq "$NCONT"); do
  n=bench-$$-$i
  names+=("$n")
  "$KILN" toolbox create "$n" >/dev/null
  "$KILN" toolbox run -c "$n" true
done
json=$("$KILN" toolbox list --json)
image_size=$(echo "$json" | awk -v id="\"$IMAGE_ID\"," '$0 ~ "\"id\": "id {f=1} f && /"size"/ {gsub(/[^0-9]/,""); print; exit}')
total=0
for n in "${names[@]}"; do
  s=$(echo "$json" | awk -v n="\"$n\"," '$0 ~ "\"name\": "n {f=1} f && /"size"/ {gsub(/[^0-9]/,""); print; exit}')
  total=$(( total + s ))
done
count=${#names[@]}
echo "disk: shared image $(( image_size / 1024 )) KiB, stored once"
echo "disk: $count containers (each started once) add $(( total / 1024 )) KiB in all, $(( total / count / 1024 )) KiB each"
echo "disk: image + $count containers = $(ratio $(( image_size + total )) "$image_size") × one image"
