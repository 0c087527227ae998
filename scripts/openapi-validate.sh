#!/usr/bin/env bash
# Fetches /openapi.json from a real `tenantsync serve` and validates it as OpenAPI 3.1 with openapi-spec-validator.
# Usage: scripts/openapi-validate.sh   (needs a built target/debug/tenantsync; PYTHON defaults to the harness venv's)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${TENANTSYNC_BIN:-$root/target/debug/tenantsync}
python=${PYTHON:-${HARNESS_VENV:?set HARNESS_VENV or PYTHON}/bin/python}
work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" serve --listen 127.0.0.1:0 --database "sqlite://$work/openapi.db" --log warn > "$work/serve.out" 2> "$work/serve.log" &
server_pid=$!
for _ in $(seq 1 200); do
    grep -q '^listening on ' "$work/serve.out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log"; echo "server exited"; exit 1; }
    sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/serve.out" | head -n 1)
[ -n "$url" ] || { echo "server did not start"; cat "$work/serve.log"; exit 1; }

curl -sf "$url/openapi.json" > "$work/openapi.json"
"$python" - "$work/openapi.json" <<'PY'
import json, sys
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator
document = json.load(open(sys.argv[1]))
assert document["openapi"].startswith("3.1"), document["openapi"]
validate(document, cls=OpenAPIV31SpecValidator)
n_operations = sum(len([key for key in item if key != "parameters"]) for item in document["paths"].values())
print(f"openapi: valid OpenAPI {document['openapi']}, {len(document['paths'])} paths, {n_operations} operations")
PY
