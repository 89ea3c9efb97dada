#!/usr/bin/env bash
# kiln install PKG (package layering: resolve, overlay + dpkg in a
# sandbox, commit, deploy) on a scratch sysroot, against apt-get install
# PKG in a mutable chroot of the same base tree, both from the same local
# copy of the .debs (a file: repository; no network for either); and the
# disk the layered deployment adds, against the packages' installed size.
#
#   bench/layer.sh [PKG]     (default: hello)
#
# PKG and the dependencies the base lacks are fetched once with the host's
# apt (`apt-get --download-only` against the base's dpkg database; needs
# the host's apt lists). Without them, or with PKG=local, a local test
# package (kiln-bench: 2 MB in 100 files, a conffile, one dependency) is
# built with dpkg-deb instead.
#
# Then `kiln install --apply-live PKG` on another scratch sysroot, timed
# inside a booted-looking mount and PID namespace (the deployment as `/`,
# its /usr read-only, /sysroot, /run/ostree-booted, shared mounts, as
# tests/layer_live.rs sets it up), kiln running from inside with the
# tree's own apt and bubblewrap.
#
# Needs root, a base tree with apt, bubblewrap and mount that the layering tests
# cache (/var/cache/kiln-tests/layer/base-*: run `cargo test --test
# layer_live` once), dpkg-dev, and a release build of kiln
# (target/release/kiln, or KILN=path). Timing uses bash's `time`
# (TIMEFORMAT), nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-$PWD/target/release/kiln}
PKG=${1:-${PKG:-hello}}
BASE=
for b in /var/cache/kiln-tests/layer/base-*; do
    if [ -x "$b/usr/bin/apt-get" ] && [ -x "$b/usr/bin/bwrap" ] && [ -x "$b/usr/bin/mount" ]; then BASE=$b; break; fi
done
[ -n "$BASE" ] || { echo "no cached base tree with apt, bubblewrap and mount: run cargo test --test layer_live first" >&2; exit 1; }
[ -x "$KILN" ] || { echo "no kiln at $KILN: cargo build --release (or KILN=path)" >&2; exit 1; }
W=$(mktemp -d /var/tmp/kiln-bench-layer.XXXXXX)
C=$W/chroot
cleanup() {
    umount "$C/proc" 2>/dev/null || true
    chattr -R -i "$W" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
TIMEFORMAT=%R
# Seconds a command took (its output discarded).
seconds() { { time "$@" >/dev/null 2>&1; } 2>&1; }

# The .debs: PKG and what the base lacks, from the host's apt lists.
R=$W/repo; mkdir -p $R
got=0
if [ "$PKG" != local ] && command -v apt-get >/dev/null; then
    mkdir -p $W/apt/partial
    if apt-get -qq -o Dir::State::status=$BASE/var/lib/dpkg/status \
        -o Dir::Cache::archives=$W/apt -o Debug::NoLocking=1 \
        -o APT::Install-Recommends=false --download-only -y install "$PKG" >$W/apt.log 2>&1 &&
        ls $W/apt/*.deb >/dev/null 2>&1; then
        mv $W/apt/*.deb $R/
        got=1
    else
        echo "apt-get could not fetch $PKG (no apt lists or mirror?); using a local test package" >&2
    fi
fi
if [ $got = 0 ]; then
    PKG=kiln-bench
    B=$W/build; mkdir -p $B
    mk() { mkdir -p $B/$1/DEBIAN; printf 'Package: %s\nVersion: 1.0\nArchitecture: all\nMaintainer: k <k@example.org>\nInstalled-Size: %s\nDescription: bench\n%s' "$1" 1000 "$2" > $B/$1/DEBIAN/control; }
    mk kiln-benchlib ""; mkdir -p $B/kiln-benchlib/usr/lib/kiln-bench
    for i in $(seq 1 50); do head -c 20000 /dev/urandom > $B/kiln-benchlib/usr/lib/kiln-bench/lib$i.so; done
    mk kiln-bench "Depends: kiln-benchlib
"; mkdir -p $B/kiln-bench/usr/share/kiln-bench $B/kiln-bench/etc
    for i in $(seq 1 50); do head -c 20000 /dev/urandom > $B/kiln-bench/usr/share/kiln-bench/f$i; done
    echo x=1 > $B/kiln-bench/etc/kiln-bench.conf; echo /etc/kiln-bench.conf > $B/kiln-bench/DEBIAN/conffiles
    for p in kiln-benchlib kiln-bench; do dpkg-deb --root-owner-group -b $B/$p $R/${p}_1.0_all.deb >/dev/null; done
fi
(cd $R && dpkg-scanpackages . /dev/null > Packages 2>/dev/null)
debs=$(ls $R/*.deb | xargs -n1 basename | tr '\n' ' ')
inst_kib=0
for d in $R/*.deb; do inst_kib=$((inst_kib + $(dpkg-deb --field "$d" Installed-Size))); done

# A sysroot at $1 with the base deployed; its /etc/apt points at the
# local repo. Resolved once untimed (apt-get update), as in the chroot.
make_sysroot() {
    local S=$1 T=$W/tree D
    mkdir -p $S
    cp -a --reflink=auto "$BASE" $T; mkdir -p $T/boot
    echo k > $T/boot/vmlinuz-6.1.0-99-amd64; echo i > $T/boot/initrd.img-6.1.0-99-amd64
    $KILN admin init-fs $S >/dev/null; $KILN admin os-init debian --sysroot=$S >/dev/null
    $KILN compose rootfs --repo $S/ostree/repo -b debian/bench $T >/dev/null
    rm -rf $T
    $KILN admin deploy debian/bench --os=debian --sysroot=$S >/dev/null
    D=$(ls -d $S/ostree/deploy/debian/deploy/*.0)
    rm -f $D/etc/apt/sources.list
    echo "deb [trusted=yes] file:$R ./" > $D/etc/apt/sources.list.d/bench.list
    $KILN install --sysroot=$S --dry-run $PKG >/dev/null 2>&1
}
S=$W/sysroot
make_sysroot $S
repo_before=$(du -sb $S/ostree/repo/objects | cut -f1)
# Each side starts with nothing dirty in the page cache: the set-up just
# wrote a whole tree, and kiln's syncfs before the boot swap would pay for
# flushing it.
sync
kiln_s=$(seconds $KILN install --sysroot=$S $PKG)
# (grep reads everything: kiln must not see a closed pipe under pipefail.)
layered() { $KILN status --json --sysroot=$1 | grep -c "\"$PKG\"" >/dev/null; }
layered $S || { echo "kiln install $PKG did not layer it" >&2; exit 1; }
repo_after=$(du -sb $S/ostree/repo/objects | cut -f1)

# kiln install --apply-live: a fresh sysroot, kiln run from inside a
# booted-looking namespace whose / is its deployment.
L=$W/live; make_sysroot $L
LD=$(ls -d $L/ostree/deploy/debian/deploy/*.0)
kargs=$($KILN status --json --sysroot=$L | python3 -c 'import json,sys; print(json.load(sys.stdin)["deployments"][0]["kargs"])')
mkdir -p $W/root
printf '%s\n' \
    'set -e' \
    'mount --make-rprivate /' \
    "R=$W/root" \
    "mount --bind $LD \$R" \
    "mount --bind $LD/usr \$R/usr" \
    'mount -o remount,bind,ro $R/usr' \
    "mount --bind $L \$R/sysroot" \
    "mount --bind $L/boot \$R/boot" \
    "mount --bind $L/ostree/deploy/debian/var \$R/var" \
    "mkdir -p \$R$W; mount --bind $W \$R$W" \
    'mount -t tmpfs tmpfs $R/run; touch $R/run/ostree-booted' \
    'mount -t tmpfs tmpfs $R/tmp' \
    "cp $KILN \$R/tmp/kiln" \
    'mount --rbind /dev $R/dev' \
    'mount -t proc proc $R/proc' \
    "echo '$kargs' > \$R/run/cmdline" \
    'mount --bind $R/run/cmdline $R/proc/cmdline' \
    'mount --make-rshared $R' \
    "exec chroot \$R /bin/bash -c 'TIMEFORMAT=%R; { time /tmp/kiln install --apply-live $PKG >$W/live.log 2>&1; } 2>$W/live.time'" \
    > $W/booted.sh
live_s=
sync
if unshare -m -p -f sh $W/booted.sh && layered $L; then
    live_s=$(cat $W/live.time)
else
    echo "kiln install --apply-live failed:" >&2; tail -5 $W/live.log >&2 || true
fi

# Mutable chroot of the same base: apt-get install from the same repo.
cp -a --reflink=auto "$BASE" $C
mkdir -p $C/srv/repo; cp $R/*.deb $R/Packages $C/srv/repo/
rm -f $C/etc/apt/sources.list $C/etc/apt/sources.list.d/*
echo "deb [trusted=yes] file:/srv/repo ./" > $C/etc/apt/sources.list.d/bench.list
mount -t proc proc $C/proc
chroot $C apt-get -qq update >/dev/null
sync
apt_s=$(seconds chroot $C env DEBIAN_FRONTEND=noninteractive apt-get -y -o APT::Install-Recommends=false install $PKG)
chroot $C dpkg -s $PKG >/dev/null

# Own bytes of the layered deployment (0) and of the base one (1): both
# have their own /etc copy; the rest is hardlinked to the repo.
read -r excl excl_base < <($KILN df --json --sysroot=$S | python3 -c 'import json,sys; d=json.load(sys.stdin)["deployments"]; print(d[0]["exclusive_bytes"], d[1]["exclusive_bytes"])')
echo "package: $PKG (.debs: $debs)"
printf 'kiln install (resolve, overlay, dpkg, commit, deploy): %6.2f s\n' "$kiln_s"
[ -z "$live_s" ] || printf 'kiln install --apply-live (and /usr switched):       %6.2f s\n' "$live_s"
printf 'apt-get install in a mutable chroot:                  %6.2f s\n' "$apt_s"
printf 'ratio kiln/apt-get: %.1fx\n' "$(echo "$kiln_s / $apt_s" | bc -l)"
[ -z "$live_s" ] || printf 'ratio kiln --apply-live/apt-get: %.1fx\n' "$(echo "$live_s / $apt_s" | bc -l)"
printf 'installed size of the packages (Installed-Size): %6d KiB\n' "$inst_kib"
printf 'new deployment, files of its own (not hardlinked): %6d KiB (the base deployment: %d KiB, its /etc)\n' $((excl / 1024)) $((excl_base / 1024))
printf 'repo objects added by the layered commit:          %6d KiB\n' $(((repo_after - repo_before) / 1024))
