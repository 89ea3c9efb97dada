#!/usr/bin/env bash
# Static delta benchmark: kiln vs ostree on the same repo, in the same run.
#
#   bench/delta.sh [--runs N] [--src DIR] [--kiln PATH]
#
# Input: an archive repo with two commits of DIR (default /usr/lib/python3.11,
# ~55 MB): the second appends a line to every 10th .py file, changes 4 bytes
# in the middle of every 3rd .so, deletes every 50th file and adds one.
# Measured, alternating kiln and ostree, median of N runs (default 3):
#   generate --empty          (pure compression)
#   generate FROM -> TO       (bsdiff / rollsum of changed files)
#   apply-offline of each into a bare-user repo (kiln's delta with kiln,
#   ostree's with ostree)
# Prints wall time, ratio kiln/ostree (lower is better) and the delta sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-$PWD/target/release/kiln}
SRC=/usr/lib/python3.11
RUNS=3
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift ;;
    --src) SRC=$2; shift ;;
    --kiln) KILN=$2; shift ;;
    *) echo "usage: $0 [--runs N] [--src DIR] [--kiln PATH]" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$KILN" ] || cargo build --release
command -v ostree >/dev/null || { echo "ostree is not installed (apt-get install ostree)" >&2; exit 1; }

W=$(mktemp -d /var/tmp/kiln-delta-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
cp -a "$SRC" "$W/tree"
ostree --repo="$W/src" init --mode=archive
ostree --repo="$W/src" commit -b main --timestamp=2021-01-01T00:00:00Z "$W/tree" >/dev/null
python3 - "$W/tree" <<'PY'
import os, sys
n = 0
for root, dirs, files in os.walk(sys.argv[1]):
    dirs.sort()
    for f in sorted(files):
        p = os.path.join(root, f)
        if os.path.islink(p):
            continue
        n += 1
        if f.endswith('.py') and n % 10 == 0:
            open(p, 'a').write('\n# updated\n')
        elif f.endswith('.so') and n % 3 == 0:
            b = bytearray(open(p, 'rb').read())
            if len(b) > 2000:
                b[len(b) // 2:len(b) // 2 + 4] = b'KILN'
                open(p, 'wb').write(b)
        elif n % 50 == 0:
            os.unlink(p)
os.makedirs(os.path.join(sys.argv[1], 'newstuff'), exist_ok=True)
open(os.path.join(sys.argv[1], 'newstuff', 'data.txt'), 'w').write('hello\n' * 10000)
PY
ostree --repo="$W/src" commit -b main --timestamp=2021-01-02T00:00:00Z "$W/tree" >/dev/null
FROM=$(ostree --repo="$W/src" rev-parse main^)
TO=$(ostree --repo="$W/src" rev-parse main)
echo "input: $SRC, $(find "$W/tree" -type f | wc -l) files, $(du -sh "$W/tree" | cut -f1); from $FROM to $TO"

# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# secs CMD...: wall seconds of one run
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }

# gen TOOL ARGS...: generate into a fresh copy of the source repo's deltas dir
gen() {
  local tool=$1; shift
  rm -rf "$W/src/deltas"
  if [ "$tool" = kiln ]; then secs "$KILN" repo --repo="$W/src" static-delta generate "$@"
  else secs ostree --repo="$W/src" static-delta generate "$@"; fi
}
# fresh TARGET [FROM]: a bare-user repo holding FROM (if given)
fresh() {
  rm -rf "$1"; ostree --repo="$1" init --mode=bare-user
  if [ -n "${2:-}" ]; then ostree --repo="$1" pull-local "$W/src" "$2" >/dev/null; fi
}
declare -A T SIZE
for kind in empty fromto; do
  # no fallback objects: apply-offline refuses them
  if [ $kind = empty ]; then args=(--min-fallback-size=0 --empty "$TO"); else args=(--min-fallback-size=0 --from="$FROM" "$TO"); fi
  for tool in kiln ostree; do : > "$W/t.$tool.gen.$kind"; : > "$W/t.$tool.apply.$kind"; done
  for ((i = 0; i < RUNS; i++)); do
    for tool in kiln ostree; do
      gen $tool "${args[@]}" >> "$W/t.$tool.gen.$kind"
      SIZE[$tool.$kind]=$(du -sb "$W/src/deltas" | cut -f1)
      rm -rf "$W/d.$tool.$kind"; cp -a "$W/src/deltas" "$W/d.$tool.$kind"
    done
  done
  for ((i = 0; i < RUNS; i++)); do
    for tool in kiln ostree; do
      d=$(find "$W/d.$tool.$kind" -name superblock -printf '%h\n')
      if [ $kind = empty ]; then fresh "$W/t" ""; else fresh "$W/t" "$FROM"; fi
      sync
      if [ $tool = kiln ]; then secs "$KILN" repo --repo="$W/t" static-delta apply-offline "$d"
      else secs ostree --repo="$W/t" static-delta apply-offline "$d"; fi >> "$W/t.$tool.apply.$kind"
      ostree --repo="$W/t" fsck -q >/dev/null || echo "WARNING: fsck failed after $tool apply ($kind)"
    done
  done
  for step in gen apply; do
    T[kiln.$step.$kind]=$(median < "$W/t.kiln.$step.$kind")
    T[ostree.$step.$kind]=$(median < "$W/t.ostree.$step.$kind")
  done
done
echo
printf '%-18s %10s %10s %8s\n' step ostree kiln ratio
for kind in empty fromto; do
  for step in gen apply; do
    o=${T[ostree.$step.$kind]}; k=${T[kiln.$step.$kind]}
    printf '%-18s %9.2fs %9.2fs %8.2f\n' "$step-$kind" "$o" "$k" "$(echo "$k / $o" | bc -l)"
  done
  o=${SIZE[ostree.$kind]}; k=${SIZE[kiln.$kind]}
  printf '%-18s %10d %10d %8.3f\n' "size-$kind (bytes)" "$o" "$k" "$(echo "$k / $o" | bc -l)"
done
