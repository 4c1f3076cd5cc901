#!/usr/bin/env bash
# Compare `sp run`'s /piece throughput with nginx serving the same file on loopback.
#
#   scripts/load-vs-nginx.sh [SIZE_MIB] [CONCURRENCY] [RANGE] [REQUESTS]
#
# Defaults: a 256 MiB random file, 1000 concurrent workers, 1MiB ranges, 8000 requests.
# Needs nginx (Debian: apt-get install -y nginx). Everything runs on this machine, load
# generator included, so the numbers are a ratio between the two servers, not absolutes.
# Not part of the test run.
set -euo pipefail
SIZE_MIB=${1:-256}
CONC=${2:-1000}
RANGE=${3:-1MiB}
REQS=${4:-8000}
SP_PORT=${SP_PORT:-47710}
CHAIN_PORT=${CHAIN_PORT:-47711}
NGINX_PORT=${NGINX_PORT:-47712}

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
cleanup() {
  [[ -n "${sp_pid:-}" ]] && kill "$sp_pid" 2>/dev/null && wait "$sp_pid" 2>/dev/null || true
  [[ -f "$work/nginx.pid" ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

command -v nginx >/dev/null || { echo "nginx not found (apt-get install -y nginx)" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "building sp and client"
(cd "$root" && go build -o "$work/sp" ./cmd/sp && go build -o "$work/client" ./cmd/client)

echo "writing a ${SIZE_MIB} MiB random file"
mkdir -p "$work/www"
chmod 755 "$work" "$work/www"  # nginx workers run as an unprivileged user
head -c "$((SIZE_MIB << 20))" /dev/urandom > "$work/www/piece.bin"
chmod 644 "$work/www/piece.bin"
cid=$("$work/client" commp "$work/www/piece.bin" | awk '{print $1}')

echo "starting sp run"
"$work/sp" run --data-dir "$work/sp-data" --listen "127.0.0.1:$SP_PORT" --chain-listen "127.0.0.1:$CHAIN_PORT" \
  --max-piece-reads $((CONC * 2)) --log-level warn >"$work/sp.out" 2>"$work/sp.err" &
sp_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$SP_PORT/pdp/ping" >/dev/null && break; sleep 0.1; done

echo "uploading $cid"
loc=$(curl -fs -D - -o /dev/null -H 'Content-Type: application/json' -d "{\"pieceCid\":\"$cid\"}" \
  "http://127.0.0.1:$SP_PORT/pdp/piece" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
if [[ -n "$loc" ]]; then
  curl -fs -X PUT --data-binary "@$work/www/piece.bin" -H 'Content-Type: application/octet-stream' "http://127.0.0.1:$SP_PORT$loc"
fi

cat > "$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path $work/nginx-tmp;
  proxy_temp_path $work/nginx-tmp;
  fastcgi_temp_path $work/nginx-tmp;
  uwsgi_temp_path $work/nginx-tmp;
  scgi_temp_path $work/nginx-tmp;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $work/www;
  }
}
CONF
mkdir -p "$work/nginx-tmp"
nginx -c "$work/nginx.conf" -p "$work"
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$NGINX_PORT/piece.bin" -r 0-0 && break; sleep 0.1; done

echo
echo "== sp run /piece/$cid"
"$work/sp" load --url "http://127.0.0.1:$SP_PORT/piece/$cid" --concurrency "$CONC" --range-size "$RANGE" --requests "$REQS" || true
echo
echo "== nginx $(nginx -v 2>&1 | sed 's/.*\///') /piece.bin (same bytes)"
"$work/sp" load --url "http://127.0.0.1:$NGINX_PORT/piece.bin" --concurrency "$CONC" --range-size "$RANGE" --requests "$REQS" || true
