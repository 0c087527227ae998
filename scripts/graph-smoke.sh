#!/usr/bin/env bash
# Runs Microsoft's Graph SDK smoke test (../shared/harness/graph_client_smoke.py) against a real tenantsync server.
# Usage: scripts/graph-smoke.sh [DATABASE_URL]   (default: a fresh SQLite file)
# Needs HARNESS_VENV (see ../shared/harness/setup.sh) and a built target/debug/tenantsync.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${TENANTSYNC_SHARED:-$root/../shared}
bin=${TENANTSYNC_BIN:-$root/target/debug/tenantsync}
work=$(mktemp -d)
database=${1:-sqlite://$work/smoke.db}
name="smoke$RANDOM$RANDOM"
domain="$name.example.com"
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" tenant create --name "$name" --domain "$domain" --database "$database" --json --log warn > "$work/tenant.json"
client_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clientId"])' "$work/tenant.json")
secret=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clientSecret"])' "$work/tenant.json")

"$bin" serve --listen 127.0.0.1:0 --database "$database" --log warn > "$work/serve.out" 2> "$work/serve.log" &
server_pid=$!
for _ in $(seq 1 200); do
    grep -q '^listening on ' "$work/serve.out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log"; echo "server exited"; exit 1; }
    sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/serve.out" | head -n 1)
[ -n "$url" ] || { echo "server did not start"; cat "$work/serve.log"; exit 1; }

# The token comes from the real token endpoint, addressed by domain, as an Entra client would ask.
token=$(curl -sf -X POST "$url/$domain/oauth2/v2.0/token" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$client_id" \
    --data-urlencode "client_secret=$secret" --data-urlencode "scope=https://graph.microsoft.com/.default" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

echo "graph smoke against $url on ${database%%://*}"
"${HARNESS_VENV:?set HARNESS_VENV}/bin/python" "$shared/harness/graph_client_smoke.py" "$url/v1.0" "$token" --domain "$domain"
