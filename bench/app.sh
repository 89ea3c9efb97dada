#!/usr/bin/env bash
# Speed and disk cost of `kiln app`, as root, against the real flatpak.
#
#   start-up : kiln app run --command=true APP   vs  flatpak run --command=true APP
#              kiln app run --command=true APP   vs  a bare bwrap of the same trees
#   install  : kiln app install (runtime + app) from nginx on 127.0.0.1
#              vs flatpak install of the same repo
#   disk     : two apps sharing one runtime (kiln and flatpak installations)
#
# Usage: bench/app.sh [RUNS]
# Uses farm-bench (pairs A/B, prints the median ratio) when on PATH, else a
# plain loop. KILN=path/to/kiln (default target/release/kiln, else debug).
# The runtime is the test suite's (busybox-static + libc6 from Debian,
# cached in /var/cache/kiln-tests by `cargo test --test app_lifecycle`); if
# it is missing, the host's busybox is used.
set -euo pipefail

RUNS=${1:-30}
cd "$(dirname "$0")/.."
if [ -z "${KILN:-}" ]; then
  if [ -x target/release/kiln ]; then KILN=$PWD/target/release/kiln; else KILN=$PWD/target/debug/kiln; fi
fi
[ "$(id -u)" = 0 ] || { echo "bench/app.sh: run as root (flatpak installs system-wide)" >&2; exit 1; }
for c in bwrap flatpak ostree nginx; do
  command -v $c >/dev/null || { echo "bench/app.sh: needs $c" >&2; exit 1; }
done

W=$(mktemp -d /var/tmp/kiln-app-bench.XXXXXX)
NGINX_PID=
cleanup() { [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
export KILN_APPS_SYSTEM_DIR=$W/kiln-sys KILN_APPS_USER_DIR=$W/kiln-user
export FLATPAK_SYSTEM_DIR=$W/fp-sys FLATPAK_USER_DIR=$W/fp-user HOME=$W/home
unset DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR
mkdir -p "$HOME"

# The runtime and two apps, exported by kiln into an archive repo.
cached=$(ls -d /var/cache/kiln-tests/app-runtime-*/files 2>/dev/null | head -1 || true)
mkdir -p "$W/rt"
if [ -n "$cached" ]; then
  cp -al "$cached" "$W/rt/files"
else
  mkdir -p "$W/rt/files/bin" "$W/rt/files/etc"
  cp "$(command -v busybox)" "$W/rt/files/bin/busybox"
  for a in sh true echo; do ln -s busybox "$W/rt/files/bin/$a"; done
fi
printf '[Runtime]\nname=org.kiln.Bench\nruntime=org.kiln.Bench/x86_64/1\nsdk=org.kiln.Bench/x86_64/1\n' > "$W/rt/metadata"
"$KILN" app build-export --runtime "$W/repo" "$W/rt" 1 >/dev/null
for id in org.kiln.BenchA org.kiln.BenchB; do
  "$KILN" app build-init "$W/$id" $id org.kiln.Bench org.kiln.Bench 1 >/dev/null
  mkdir -p "$W/$id/files/bin"
  printf '#!/bin/sh\necho hello\n' > "$W/$id/files/bin/hello"; chmod +x "$W/$id/files/bin/hello"
  "$KILN" app build-finish "$W/$id" --command=hello >/dev/null
  "$KILN" app build-export "$W/repo" "$W/$id" stable >/dev/null
done

# nginx on 127.0.0.1.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$W/nginx.conf" <<EOF
user root; daemon off; worker_processes 2; pid $W/nginx.pid; error_log $W/nginx.err warn;
events { worker_connections 256; }
http { access_log off; client_body_temp_path $W; proxy_temp_path $W; fastcgi_temp_path $W;
  uwsgi_temp_path $W; scgi_temp_path $W; sendfile on;
  server { listen 127.0.0.1:$port; root $W/repo; location / { } } }
EOF
nginx -c "$W/nginx.conf" -p "$W" & NGINX_PID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
URL=http://127.0.0.1:$port/

now() { date +%s%N; }
ms() { awk -v n="$1" 'BEGIN { printf "%.0f", n / 1e6 }'; }

echo "== install of runtime + app from nginx (127.0.0.1)"
t0=$(now); "$KILN" app remote-add --no-gpg-verify bench "$URL"; "$KILN" app install -y bench org.kiln.BenchA >/dev/null 2>&1; t1=$(now)
flatpak remote-add --no-gpg-verify bench "$URL"
t2=$(now); flatpak install -y --noninteractive bench app/org.kiln.BenchA/x86_64/stable >/dev/null 2>&1; t3=$(now)
k=$(( t1 - t0 )); f=$(( t3 - t2 ))
echo "kiln $(ms $k) ms, flatpak $(ms $f) ms, ratio $(awk -v a=$k -v b=$f 'BEGIN { printf "%.2f", a / b }')"

echo "== disk: two apps sharing the runtime"
"$KILN" app install -y bench org.kiln.BenchB >/dev/null 2>&1
flatpak install -y --noninteractive bench app/org.kiln.BenchB/x86_64/stable >/dev/null 2>&1
echo "kiln: $(du -sh "$KILN_APPS_SYSTEM_DIR" | cut -f1) (runtime deployed once: $(du -sh "$KILN_APPS_SYSTEM_DIR/runtime" | cut -f1)); flatpak: $(du -sh "$FLATPAK_SYSTEM_DIR" | cut -f1)"

RT=$("$KILN" app info --json org.kiln.Bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["deploy_dir"])')
APPD=$("$KILN" app info --json org.kiln.BenchA | python3 -c 'import json,sys; print(json.load(sys.stdin)["deploy_dir"])')
BARE="bwrap --ro-bind $RT/files /usr --ro-bind $APPD/files /app --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --ro-bind $RT/files/etc /etc --proc /proc --dev /dev --tmpfs /tmp --unshare-all --die-with-parent --clearenv --setenv PATH /app/bin:/usr/bin true"
# Warm both.
"$KILN" app run --command=true org.kiln.BenchA; flatpak run --command=true org.kiln.BenchA

echo "== start-up: kiln app run vs flatpak run (target ratio <= 0.5)"
if command -v farm-bench >/dev/null; then
  farm-bench -n "$RUNS" --warmup 3 --vs "flatpak run --command=true org.kiln.BenchA" -- "$KILN" app run --command=true org.kiln.BenchA
  echo "== start-up: kiln app run vs bare bwrap of the same trees (target ratio <= 1.3)"
  farm-bench -n "$RUNS" --warmup 3 --vs "$BARE" -- "$KILN" app run --command=true org.kiln.BenchA
else
  loop() { local t0 t1; t0=$(now); for _ in $(seq "$RUNS"); do "$@" >/dev/null; done; t1=$(now); echo $(( (t1 - t0) / RUNS )); }
  k=$(loop "$KILN" app run --command=true org.kiln.BenchA)
  f=$(loop flatpak run --command=true org.kiln.BenchA)
  b=$(loop $BARE)
  echo "kiln $(( k / 1000 )) µs, flatpak $(( f / 1000 )) µs, bare bwrap $(( b / 1000 )) µs"
  echo "kiln/flatpak $(awk -v a=$k -v b=$f 'BEGIN { printf "%.2f", a / b }'), kiln/bwrap $(awk -v a=$k -v b=$b 'BEGIN { printf "%.2f", a / b }')"
fi
