#!/usr/bin/env bash
# Pull benchmark: kiln vs ostree pulling the same archive repo over HTTP
# from nginx on 127.0.0.1 into a fresh bare-user repo, in the same run.
# Prints wall time and peak RSS of each (/usr/bin/time -v) and the ratio
# kiln/ostree (the target is <= 0.4).
#
#   bench/pull.sh [--src DIR] [--runs N] [--kiln PATH] [--jobs N]
#
# Default input: a copy of this machine's /usr/share (~700 MB, ~45k files).
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-$PWD/target/release/kiln}
SRC=/usr/share
RUNS=3
JOBS=16
while [ $# -gt 0 ]; do
  case $1 in
    --src) SRC=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --kiln) KILN=$2; shift ;;
    --jobs) JOBS=$2; shift ;;
    *) echo "usage: $0 [--src DIR] [--runs N] [--kiln PATH] [--jobs N]" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$KILN" ] || cargo build --release
for tool in ostree nginx /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (scripts/deps.sh)" >&2; exit 1; }
done

W=$(mktemp -d /var/tmp/kiln-pull-bench.XXXXXX)
NGINX_PID=
cleanup() { [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

echo "input: $SRC"
ostree --repo="$W/served" init --mode=archive
ostree --repo="$W/served" commit -b main --timestamp=2026-01-01T00:00:00Z "$SRC" >/dev/null
ostree --repo="$W/served" summary -u
echo "objects served: $(find "$W/served/objects" -type f | wc -l), size: $(du -sh "$W/served" | cut -f1)"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$W/nginx.conf" <<CONF
user root;
daemon off;
worker_processes 2;
pid $W/nginx.pid;
error_log $W/nginx.err warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  client_body_temp_path $W; proxy_temp_path $W; fastcgi_temp_path $W; uwsgi_temp_path $W; scgi_temp_path $W;
  server { listen 127.0.0.1:$PORT; root $W/served; location / { } }
}
CONF
nginx -c "$W/nginx.conf" -p "$W" &
NGINX_PID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
URL=http://127.0.0.1:$PORT/

# one TOOL N: a fresh bare-user repo, one timed pull; prints "secs peak_kB"
one() {
  local tool=$1 n=$2 repo=$W/$1-$2
  rm -rf "$repo"
  if [ "$tool" = kiln ]; then
    "$KILN" repo --repo="$repo" init --mode=bare-user
    "$KILN" repo --repo="$repo" remote add --no-gpg-verify origin "$URL"
    sync
    /usr/bin/time -v -o "$W/time" "$KILN" repo --repo="$repo" pull --jobs="$JOBS" origin main >/dev/null
  else
    ostree --repo="$repo" init --mode=bare-user
    ostree --repo="$repo" remote add --no-gpg-verify origin "$URL"
    sync
    /usr/bin/time -v -o "$W/time" ostree --repo="$repo" pull origin main >/dev/null
  fi
  local secs kb
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$W/time")
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/time")
  [ "$n" = 1 ] && [ "$tool" = kiln ] && ostree --repo="$repo" fsck -q >/dev/null && echo "  (kiln's repo passes ostree fsck)" >&2
  rm -rf "$repo"
  echo "$secs $kb"
}

printf '%-4s %10s %10s %10s %10s %7s\n' run ostree_s ostree_kB kiln_s kiln_kB ratio
for n in $(seq "$RUNS"); do
  read -r os okb < <(one ostree "$n")
  read -r ks kkb < <(one kiln "$n")
  printf '%-4s %10.2f %10d %10.2f %10d %7.2f\n' "$n" "$os" "$okb" "$ks" "$kkb" "$(echo "$ks / $os" | bc -l)"
done
