#!/usr/bin/env bash
# Runs the SCIM compliance suites (../shared/harness/scim_compliance.sh: scim2-tester and scim-sanity) against a real
# tenantsync server's /scim/v2, with no waiver flag. Fails unless the harness's last line is "N passed, 0 failed"
# with N >= 130 (fewer checks would mean the server published fewer attributes or a suite stopped early).
# Usage: scripts/scim-compliance.sh [DATABASE_URL]   (default: a fresh SQLite file)
# Needs HARNESS_VENV (see ../shared/harness/setup.sh) and a built target/debug/tenantsync.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${TENANTSYNC_SHARED:-$root/../shared}
bin=${TENANTSYNC_BIN:-$root/target/debug/tenantsync}
min_passed=${SCIM_MIN_PASSED:-130}
work=$(mktemp -d)
database=${1:-sqlite://$work/scim.db}
name="scim$RANDOM$RANDOM"
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

# The same token as /v1.0, from the real token endpoint: the SCIM tenant is the token's.
token=$(curl -sf -X POST "$url/$domain/oauth2/v2.0/token" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$client_id" \
    --data-urlencode "client_secret=$secret" --data-urlencode "scope=https://graph.microsoft.com/.default" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

echo "scim compliance against $url/scim/v2 on ${database%%://*}"
export HARNESS_VENV=${HARNESS_VENV:?set HARNESS_VENV}
status=0
"$shared/harness/scim_compliance.sh" "$url/scim/v2" "$token" | tee "$work/harness.out" || status=$?
last=$(tail -n 1 "$work/harness.out")
if [[ "$last" =~ ^([0-9]+)\ passed,\ 0\ failed$ ]] && [ "${BASH_REMATCH[1]}" -ge "$min_passed" ] && [ "$status" -eq 0 ]; then
    echo "scim compliance: ok ($last)"
else
    echo "scim compliance: FAILED: last line '$last' (want 'N passed, 0 failed' with N >= $min_passed), exit $status"
    exit 1
fi
