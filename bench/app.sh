#!/usr/bin/env bash
# Speed and disk cost of `kiln app`, as root, against the real flatpak.
#
#   start-up : kiln app run --command=true APP   vs  flatpak run --command=true APP
#              kiln app run --command=true APP   vs  a bare bwrap of the same trees
#              kiln app run --command=true APP   vs  bwrap with exactly kiln's arguments
#                                                    (captured from kiln, replayed with
#                                                    the same seccomp filter and data fds)
#   install  : kiln app install (runtime + app) from nginx on 127.0.0.1
#              vs flatpak install of the same repo
#   disk     : two apps sharing one runtime (kiln and flatpak installations)
#
# Usage: bench/app.sh [RUNS]   (RUNS >= 30 pairs, default 30)
# Start-up figures are medians of RUNS interleaved A/B runs timed by bash
# ($EPOCHREALTIME for wall time, the `time` keyword for CPU time).
# KILN=path/to/kiln (default $CARGO_TARGET_DIR or target/release/kiln,
# else debug).
# The runtime is the test suite's (busybox-static + libc6 from Debian,
# cached in /var/cache/kiln-tests by `cargo test --test app_lifecycle`); if
# it is missing, the host's busybox is used.
set -euo pipefail

RUNS=${1:-30}
[ "$RUNS" -ge 30 ] || echo "bench/app.sh: note: RUNS=$RUNS < 30, figures are rough" >&2
cd "$(dirname "$0")/.."
if [ -z "${KILN:-}" ]; then
  T=${CARGO_TARGET_DIR:-$PWD/target}
  if [ -x "$T/release/kiln" ]; then KILN=$T/release/kiln; else KILN=$T/debug/kiln; fi
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
BARE=(bwrap --ro-bind "$RT/files" /usr --ro-bind "$APPD/files" /app --symlink usr/bin /bin --symlink usr/lib /lib
  --symlink usr/lib64 /lib64 --ro-bind "$RT/files/etc" /etc --proc /proc --dev /dev --tmpfs /tmp --unshare-all
  --die-with-parent --clearenv --setenv PATH /app/bin:/usr/bin true)

# kiln's own bwrap command: kiln runs $KILN_BWRAP instead of bwrap, here a
# script that saves the arguments and the contents of the fds they name
# (--seccomp: the BPF filter; --ro-bind-data: /etc/passwd, /etc/group,
# /.flatpak-info, all memfds). The replay opens those files again at the
# same fd numbers for every run, so bwrap gets the same filter and files.
mkdir -p "$W/cap"
cat > "$W/capture" <<'EOF'
#!/bin/bash
d=$(dirname "$0")/cap
printf '%s\0' "$@" > "$d/argv"
prev=
for a in "$@"; do
  case $prev in
    --seccomp|--add-seccomp-fd|--ro-bind-data|--bind-data|--file) cat "/proc/$$/fd/$a" > "$d/fd.$a" ;;
    --sync-fd|--info-fd|--json-status-fd|--block-fd|--userns-block-fd|--args)
      echo "capture: $prev cannot be replayed" >&2; exit 1 ;;
  esac
  prev=$a
done
EOF
chmod +x "$W/capture"
KILN_BWRAP=$W/capture "$KILN" app run --command=true org.kiln.BenchA
mapfile -d '' SAME < "$W/cap/argv"
grep -qz -- '^--seccomp$' "$W/cap/argv" || { echo "bench/app.sh: kiln passed no --seccomp" >&2; exit 1; }
REDIR=
for f in "$W"/cap/fd.*; do REDIR+=" ${f##*.}<$f"; done

kiln_run() { "$KILN" app run --command=true org.kiln.BenchA; }
flatpak_run() { flatpak run --command=true org.kiln.BenchA; }
bare_bwrap() { "${BARE[@]}"; }
same_bwrap() { eval "bwrap \"\${SAME[@]}\"$REDIR"; }
for f in kiln_run flatpak_run bare_bwrap same_bwrap; do
  $f || { echo "bench/app.sh: $f failed" >&2; exit 1; }
done

# One run of "$@": wall time (µs, from $EPOCHREALTIME) and CPU time of the
# process tree (user + sys of the waited-for children, ms resolution).
TIMEFORMAT='%3U %3S'
once() {
  local t0 t1 u s
  t0=$EPOCHREALTIME
  { time "$@" >/dev/null 2>&1; } 2> "$W/cpu"
  t1=$EPOCHREALTIME
  read -r u s < "$W/cpu"
  echo "$(( ${t1/./} - ${t0/./} )) $u $s"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# pair A B TITLE: 3 warm-up pairs, then RUNS pairs, A and B alternating
# (which one goes first alternates too, so load drift hits both alike).
# Prints the median wall time and the mean CPU time of each, and the
# ratios A/B.
pair() {
  local a=$1 b=$2 i
  : > "$W/t.a"; : > "$W/t.b"
  for i in 1 2 3; do $a >/dev/null 2>&1; $b >/dev/null 2>&1; done
  for i in $(seq "$RUNS"); do
    if (( i % 2 )); then once $a >> "$W/t.a"; once $b >> "$W/t.b"
    else once $b >> "$W/t.b"; once $a >> "$W/t.a"; fi
  done
  local wa wb ca cb
  wa=$(awk '{ print $1 / 1000 }' "$W/t.a" | median); wb=$(awk '{ print $1 / 1000 }' "$W/t.b" | median)
  # CPU: the mean, as the `time` keyword has 1 ms resolution.
  ca=$(awk '{ s += $2 + $3 } END { print s * 1000 / NR }' "$W/t.a"); cb=$(awk '{ s += $2 + $3 } END { print s * 1000 / NR }' "$W/t.b")
  awk -v wa="$wa" -v wb="$wb" -v ca="$ca" -v cb="$cb" -v a="$a" -v b="$b" -v n="$RUNS" 'BEGIN {
    printf "%-12s wall %6.1f ms  cpu %5.1f ms\n%-12s wall %6.1f ms  cpu %5.1f ms\n", a, wa, ca, b, wb, cb
    printf "ratio        wall %.2f  cpu %.2f  (%d runs each: median wall, mean cpu)\n", wa / wb, (cb > 0 ? ca / cb : 0), n }'
}

echo "== start-up: kiln app run vs flatpak run (target ratio <= 0.5)"
pair kiln_run flatpak_run
echo "== start-up: kiln app run vs a bare bwrap of the same trees (target ratio <= 1.3)"
pair kiln_run bare_bwrap
echo "== start-up: kiln app run vs bwrap with kiln's own arguments, seccomp filter and data fds"
echo "   (what kiln adds on top of the sandbox it builds)"
pair kiln_run same_bwrap
