#!/usr/bin/env bash
# Provisions users from a tenantsync tenant into a real SCIM server written by others (scim2-server, started by
# ../shared/harness/scim_peer_server.sh), then changes, disables and deprovisions some, and checks what it holds.
# Needs HARNESS_VENV and a built target/debug/tenantsync.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${TENANTSYNC_SHARED:-$root/../shared}
bin=${TENANTSYNC_BIN:-$root/target/debug/tenantsync}
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

peer_port=$(free_port)
peer_token="peer-$RANDOM$RANDOM"
SCIM_PEER_TOKEN=$peer_token HARNESS_PYTHON="${HARNESS_VENV:?set HARNESS_VENV}/bin/python" \
    "$shared/harness/scim_peer_server.sh" "$peer_port" > "$work/peer.out" 2> "$work/peer.log" &
pids+=($!)
for _ in $(seq 1 100); do
    curl -sf -H "Authorization: Bearer $peer_token" "http://127.0.0.1:$peer_port/v2/ServiceProviderConfig" >/dev/null && break
    sleep 0.1
done

database="sqlite://$work/tenantsync.db"
"$bin" tenant create --name scimsource --domain scimsource.example --database "$database" --json --log warn > "$work/tenant.json"
"$bin" serve --listen 127.0.0.1:0 --database "$database" --log warn > "$work/serve.out" 2> "$work/serve.log" &
pids+=($!)
for _ in $(seq 1 200); do grep -q '^listening on ' "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/serve.out" | head -n 1)
python3 "$root/scripts/scim_peer_sync.py" "$url" "$work/tenant.json" "http://127.0.0.1:$peer_port/v2" "$peer_token" || {
    echo "--- tenantsync log"; tail -n 30 "$work/serve.log"; echo "--- peer log"; tail -n 30 "$work/peer.log"; exit 1; }
