#!/usr/bin/env bash
# kiln install (package layering) of a small package with one dependency
# on a scratch sysroot, against dpkg -i of the same .debs in a mutable
# chroot of the same base tree; and the disk the layered deployment adds.
# Needs root, the base tree the layering tests cache
# (/var/cache/kiln-tests/layer/base-*: run `cargo test --test layer_install` once),
# and target/release/kiln (or KILN=path).
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-$PWD/target/release/kiln}
BASE=$(ls -d /var/cache/kiln-tests/layer/base-* 2>/dev/null | head -1)
[ -n "$BASE" ] || { echo "no cached base tree: run cargo test --test layer_install first" >&2; exit 1; }
W=$(mktemp -d /var/tmp/kiln-bench-layer.XXXXXX)
trap 'chattr -R -i "$W" 2>/dev/null; rm -rf "$W"' EXIT

# Packages: kiln-bench (2 MiB of files, a conffile) depends on kiln-benchlib.
B=$W/build; R=$W/repo; mkdir -p $B $R
mk() { mkdir -p $B/$1/DEBIAN; printf 'Package: %s\nVersion: 1.0\nArchitecture: all\nMaintainer: k <k@example.org>\nDescription: bench\n%s' "$1" "$2" > $B/$1/DEBIAN/control; }
mk kiln-benchlib ""; mkdir -p $B/kiln-benchlib/usr/lib/kiln-bench
for i in $(seq 1 50); do head -c 20000 /dev/urandom > $B/kiln-benchlib/usr/lib/kiln-bench/lib$i.so; done
mk kiln-bench "Depends: kiln-benchlib
"; mkdir -p $B/kiln-bench/usr/share/kiln-bench $B/kiln-bench/etc
for i in $(seq 1 50); do head -c 20000 /dev/urandom > $B/kiln-bench/usr/share/kiln-bench/f$i; done
echo x=1 > $B/kiln-bench/etc/kiln-bench.conf; echo /etc/kiln-bench.conf > $B/kiln-bench/DEBIAN/conffiles
for p in kiln-benchlib kiln-bench; do dpkg-deb --root-owner-group -b $B/$p $R/${p}_1.0_all.deb >/dev/null; done
(cd $R && dpkg-scanpackages . /dev/null > Packages 2>/dev/null)

# Sysroot with the base deployed.
S=$W/sysroot; T=$W/tree; mkdir -p $S
cp -a --reflink=auto "$BASE" $T; mkdir -p $T/boot
echo k > $T/boot/vmlinuz-6.1.0-99-amd64; echo i > $T/boot/initrd.img-6.1.0-99-amd64
$KILN admin init-fs $S >/dev/null; $KILN admin os-init debian --sysroot=$S >/dev/null
$KILN compose rootfs --repo $S/ostree/repo -b debian/bench $T >/dev/null
$KILN admin deploy debian/bench --os=debian --sysroot=$S >/dev/null
D=$(ls -d $S/ostree/deploy/debian/deploy/*.0)
rm -f $D/etc/apt/sources.list
echo "deb [trusted=yes] file:$R ./" > $D/etc/apt/sources.list.d/bench.list
# Warm the deb cache once (dry run resolves; first install downloads).
$KILN install --sysroot=$S --dry-run kiln-bench >/dev/null 2>&1

t0=$(date +%s.%N)
$KILN install --sysroot=$S kiln-bench >/dev/null 2>&1
t1=$(date +%s.%N)
kiln_s=$(echo "$t1 - $t0" | bc)

# Mutable chroot: the same base tree, dpkg -i of the same files.
C=$W/chroot; cp -a --reflink=auto "$BASE" $C; mkdir -p $C/tmp/debs; cp $R/*.deb $C/tmp/debs/
t0=$(date +%s.%N)
chroot $C dpkg -i /tmp/debs/kiln-benchlib_1.0_all.deb /tmp/debs/kiln-bench_1.0_all.deb >/dev/null
t1=$(date +%s.%N)
dpkg_s=$(echo "$t1 - $t0" | bc)

excl=$($KILN df --json --sysroot=$S | python3 -c 'import json,sys; d=json.load(sys.stdin)["deployments"][0]; print(d["exclusive_bytes"])')
debs=$(du -cb $R/*.deb | tail -1 | cut -f1)
printf 'kiln install (resolve, overlay, dpkg, commit, deploy): %.2f s\n' "$kiln_s"
printf 'dpkg -i in a mutable chroot (install only):           %.2f s\n' "$dpkg_s"
printf 'ratio kiln/dpkg: %.1fx\n' "$(echo "$kiln_s / $dpkg_s" | bc -l)"
printf 'new deployment: %d KiB of its own (the .debs: %d KiB); everything else hardlinked to the repo\n' $((excl/1024)) $((debs/1024))
