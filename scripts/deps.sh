#!/usr/bin/env bash
# Installs the Debian packages kiln's tests need, only those not installed yet.
# Idempotent; prints nothing when everything is already there.
set -euo pipefail

# One package a line; add new ones here.
PACKAGES=(
  ostree           # the oracle the repo tests compare against
  bubblewrap       # sandbox for apps and toolboxes
  nginx            # static web server for pull tests
  mmdebstrap       # builds Debian root trees
  uidmap           # newuidmap/newgidmap for rootless namespaces
  tmux             # drives interactive commands in tests
  attr             # getfattr/setfattr (the tricky tree fixture)
  e2fsprogs        # mkfs.ext4 for loop-mounted images
  dosfstools       # mkfs.vfat for the ESP
  mtools           # mcopy into FAT images without mounting
  qemu-system-x86  # VM tests
  ovmf             # UEFI firmware for VM tests
  grub-efi-amd64-bin # GRUB for the ESP of kiln install to-disk
  grub-common      # grub-mkstandalone
  fdisk            # sfdisk: GPT for kiln install to-disk
  xz-utils
  curl
  python3          # the tricky tree fixture's content generator
  flatpak          # the peer kiln app is checked against
  xdg-dbus-proxy   # filtered session bus for kiln app run
  dbus-daemon      # private session bus of tests/app_dbus.rs
  dbus-bin         # dbus-send: the client in the sandbox of tests/app_dbus.rs
  busybox-static   # tiny runtimes for app tests
  gcc              # builds the static escape probe of the app tests
  libc6-dev        # static libc for that probe
  busybox-static   # static busybox for OCI toolbox images and app runtimes
  dpkg-dev         # dpkg-scanpackages: the local apt repository of the layering tests
  time             # /usr/bin/time -v for peak RSS in bench/
)

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
apt=("${sudo[@]}" apt-get -q -y -o DPkg::Lock::Timeout=600)
if ! { "${apt[@]}" update && "${apt[@]}" install --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "deps.sh: could not install: ${missing[*]}" >&2
  exit 1
fi
echo "deps.sh: installed ${missing[*]}"
