#!/usr/bin/env bash
# Store benchmark: kiln vs ostree on the same input, in the same run.
# Prints each step's wall time for both, the ratio kiln/ostree, and peak RSS.
#
#   bench/store.sh [--quick] [--src DIR] [--kiln PATH]
#
# Default input: a copy of this machine's /usr/share (~650 MB, ~45k files).
# --quick: /usr/share/doc + /usr/share/locale only.
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-$PWD/target/release/kiln}
SRC=/usr/share
QUICK=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --src) SRC=$2; shift ;;
    --kiln) KILN=$2; shift ;;
    *) echo "usage: $0 [--quick] [--src DIR] [--kiln PATH]" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$KILN" ] || cargo build --release
command -v ostree >/dev/null || { echo "ostree is not installed (apt-get install ostree)" >&2; exit 1; }

W=$(mktemp -d /var/tmp/kiln-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
echo "input: $SRC (copied to $W/tree)"
if [ $QUICK = 1 ]; then
  mkdir -p "$W/tree"; cp -a /usr/share/doc /usr/share/locale "$W/tree/" 2>/dev/null || true
else
  cp -a "$SRC" "$W/tree"
fi
echo "files: $(find "$W/tree" -type f | wc -l), size: $(du -sh "$W/tree" | cut -f1)"
cat "$W"/tree/**/* >/dev/null 2>&1 || find "$W/tree" -type f -exec cat {} + >/dev/null

# t NAME CMD...: runs CMD, records seconds and peak RSS (kB)
t() {
  local out=$W/time.$1; shift
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  find "$W/tree" -type f -exec cat {} + >/dev/null   # warm the input equally for both
  /usr/bin/time -f '%e %M' -o "$out" "$@" >/dev/null
}
row() {
  local step=$1 o k
  read -r os orss < "$W/time.ostree-$step"; read -r ks krss < "$W/time.kiln-$step"
  printf '%-22s ostree %7.2fs %7d kB   kiln %7.2fs %7d kB   ratio %.2f\n' "$step" "$os" "$orss" "$ks" "$krss" "$(echo "$ks / $os" | bc -l)"
}
TS=--timestamp=2026-01-01T00:00:00Z
for mode in bare-user archive; do
  ostree --repo="$W/o-$mode" init --mode=$mode
  "$KILN" repo --repo="$W/k-$mode" init --mode=$mode
  t "ostree-commit-$mode" ostree --repo="$W/o-$mode" commit -b b $TS "$W/tree"
  t "kiln-commit-$mode" "$KILN" repo --repo="$W/k-$mode" commit -b b $TS "$W/tree"
  [ "$(ostree --repo="$W/o-$mode" rev-parse b)" = "$("$KILN" repo --repo="$W/k-$mode" rev-parse b)" ] || echo "WARNING: commit checksums differ ($mode)"
done
t ostree-checkout-H ostree --repo="$W/o-bare-user" checkout -U -H b "$W/co-o"
t kiln-checkout-H "$KILN" repo --repo="$W/k-bare-user" checkout -U -H b "$W/co-k"
t ostree-fsck ostree --repo="$W/o-bare-user" fsck -q
t kiln-fsck "$KILN" repo --repo="$W/k-bare-user" fsck -q
t ostree-fsck-archive ostree --repo="$W/o-archive" fsck -q
t kiln-fsck-archive "$KILN" repo --repo="$W/k-archive" fsck -q
echo
echo "step                   (wall time, peak RSS; ratio = kiln/ostree, lower is better)"
row commit-bare-user; row commit-archive; row checkout-H; row fsck; row fsck-archive
