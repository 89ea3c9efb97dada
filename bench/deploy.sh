#!/usr/bin/env bash
# Deploy benchmark: `kiln admin deploy` vs `ostree admin deploy` on two
# sysroots with the same content, timed as whole processes, in turn
# (A B A B ...), with the ratio kiln/ostree per pair.
#
#   bench/deploy.sh [--quick] [--src DIR] [--runs N]
#
#  deploy  : deploy a large commit (a copy of /usr/share + kernel) again over
#            itself (checkout, /etc merge, entries, swap, old one removed)
#  upgrade : deploy a commit that differs by ~1% of its files (toggling
#            between the two, so every run is a 1% upgrade)
#
# Timing uses the workplace's whole-process timer when present, else
# /usr/bin/time -f %e.
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-$PWD/target/release/kiln}
SRC=/usr/share
RUNS=5
QUICK=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --src) SRC=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    *) echo "usage: $0 [--quick] [--src DIR] [--runs N]" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$KILN" ] || cargo build --release
command -v ostree >/dev/null || { echo "ostree is not installed (apt-get install ostree)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root (deployments are owned by root, chattr +i)" >&2; exit 1; }

W=$(mktemp -d /var/tmp/kiln-bench-deploy.XXXXXX)
cleanup() { chattr -R -i "$W" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

T=$W/tree
mkdir -p "$T/usr/lib/modules/5.10.0" "$T/usr/etc" "$T/usr/share"
if [ $QUICK = 1 ]; then
  cp -a /usr/share/doc /usr/share/locale "$T/usr/share/" 2>/dev/null || true
else
  cp -a "$SRC/." "$T/usr/share/"
fi
head -c 8M /dev/urandom > "$T/usr/lib/modules/5.10.0/vmlinuz"
head -c 16M /dev/urandom > "$T/usr/lib/modules/5.10.0/initramfs.img"
printf 'ID=bench\nPRETTY_NAME="Bench OS"\n' > "$T/usr/lib/os-release"
for i in $(seq 1 50); do echo "conf $i" > "$T/usr/etc/conf$i"; done
echo "tree: $(find "$T" -type f | wc -l) files, $(du -sh "$T" | cut -f1)"

K=$W/kiln-sysroot; O=$W/ostree-sysroot
for S in "$K" "$O"; do
  mkdir -p "$S"; ostree admin init-fs "$S" >/dev/null; ostree admin os-init bench --sysroot="$S" >/dev/null
done
TS=--timestamp=2026-01-01T00:00:00Z
ostree commit --repo="$K/ostree/repo" -b bench/a $TS -s a "$T" >/dev/null
# ~1% of the files changed for b
find "$T/usr/share" -type f | awk 'NR % 100 == 0' | while read -r f; do chmod u+w "$f"; echo x >> "$f"; done
ostree commit --repo="$K/ostree/repo" -b bench/b $TS -s b "$T" >/dev/null
ostree pull-local --repo="$O/ostree/repo" "$K/ostree/repo" bench/a bench/b >/dev/null
ostree admin deploy --sysroot="$O" --os=bench bench/a >/dev/null
"$KILN" admin deploy --sysroot="$K" --os=bench bench/a >/dev/null

# toggle.sh TOOL SYSROOT: deploy the other of bench/a, bench/b
cat > "$W/toggle.sh" <<'TOG'
#!/bin/sh
S=$2; n=$(cat "$S/.next" 2>/dev/null || echo b)
if [ "$n" = a ]; then echo b > "$S/.next"; else echo a > "$S/.next"; fi
exec $1 admin deploy --sysroot="$S" --os=bench "bench/$n" >/dev/null
TOG
chmod +x "$W/toggle.sh"

bench() { # NAME KILN_CMD OSTREE_CMD
  local name=$1 a=$2 b=$3
  echo "== $name"
  local ka=0 ob=0
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f %e -o "$W/t" sh -c "$a"; ka=$(echo "$ka + $(cat "$W/t")" | bc)
    /usr/bin/time -f %e -o "$W/t" sh -c "$b"; ob=$(echo "$ob + $(cat "$W/t")" | bc)
  done
  printf 'kiln %.2fs  ostree %.2fs  ratio %.2f\n' "$(echo "$ka/$RUNS" | bc -l)" "$(echo "$ob/$RUNS" | bc -l)" "$(echo "$ka/$ob" | bc -l)"
}
bench "deploy (large commit, again over itself)" \
  "exec $KILN admin deploy --sysroot=$K --os=bench bench/a >/dev/null" \
  "sh -c 'exec ostree admin deploy --sysroot=$O --os=bench bench/a >/dev/null'"
bench "upgrade (~1% of files changed)" \
  "exec $W/toggle.sh $KILN $K" \
  "sh -c 'exec $W/toggle.sh ostree $O'"
# Same result on both sides.
[ "$(ostree admin status --sysroot="$K" | head -1 | awk '{print $2}' | cut -d. -f1)" = \
  "$(ostree admin status --sysroot="$O" | head -1 | awk '{print $2}' | cut -d. -f1)" ] || echo "WARNING: default deployments differ"
