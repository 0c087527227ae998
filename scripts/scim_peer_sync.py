#!/usr/bin/env python3
"""Provision users from a tenantsync tenant into a SCIM server written by others, then change, disable and
deprovision some, and check what that server holds. Standard library only.

Usage: scim_peer_sync.py TENANTSYNC_URL TENANT_JSON SCIM_BASE SCIM_TOKEN
"""
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

base, tenant_file, scim_base, scim_token = sys.argv[1:5]
tenant = json.load(open(tenant_file))


def request(url, method="GET", body=None, token=None, form=None):
    headers = {}
    data = None
    if token:
        headers["Authorization"] = "Bearer " + token
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, (json.loads(raw) if raw else None)


status, reply = request(f"{base}/{tenant['id']}/oauth2/v2.0/token", "POST", form={
    "grant_type": "client_credentials", "client_id": tenant["clientId"], "client_secret": tenant["clientSecret"],
    "scope": "https://graph.microsoft.com/.default"})
assert status == 200, reply
token = reply["access_token"]


def graph(method, path, body=None):
    return request(base + "/v1.0" + path, method, body, token)


def peer_users():
    status, reply = request(scim_base + "/Users?count=1000", token=scim_token)
    assert status == 200, (status, reply)
    return {user["externalId"]: user for user in reply.get("Resources", []) if user.get("externalId")}


def wait(label, check, deadline=30):
    started = time.time()
    while time.time() - started < deadline:
        if check():
            print(f"ok   {label} ({time.time() - started:.2f} s)")
            return
        time.sleep(0.1)
    print(f"FAIL {label}: peer holds {json.dumps(peer_users(), indent=1)[:2000]}")
    sys.exit(1)


domain = [d for d in tenant["domains"] if not d.endswith(".onmicrosoft.test")][0]
people = {}
for name, title in [("ada", "Engineer"), ("bob", "Analyst"), ("cy", "Designer")]:
    status, user = graph("POST", "/users", {"accountEnabled": True, "displayName": name.title(), "givenName": name.title(),
                                            "surname": "Peer", "mailNickname": name, "userPrincipalName": f"{name}@{domain}",
                                            "mail": f"{name}@{domain}", "jobTitle": title, "department": "R&D"})
    assert status == 201, user
    people[name] = user["id"]
anchor = {name: f"{tenant['id']}/{oid}" for name, oid in people.items()}

status, app = graph("POST", "/applicationTemplates/518e5f48-1fc8-4c48-9387-9fdf28b0dfe7/instantiate", {"displayName": "SCIM peer"})
assert status == 201, app
sp = app["servicePrincipal"]["id"]
status, job = graph("POST", f"/servicePrincipals/{sp}/synchronization/jobs", {"templateId": "Azure2Azure"})
assert status == 201, job
status, reply = graph("PUT", f"/servicePrincipals/{sp}/synchronization/secrets", {"value": [
    {"key": "BaseAddress", "value": scim_base}, {"key": "SecretToken", "value": scim_token},
    {"key": "DeprovisionMode", "value": "Delete"}, {"key": "SyncAll", "value": "true"},
    {"key": "SyncNotificationSettings", "value": "{\"Enabled\":false,\"DeleteThresholdEnabled\":false}"}]})
assert status == 204, reply
status, reply = graph("POST", f"/servicePrincipals/{sp}/synchronization/jobs/{job['id']}/start")
assert status == 204, reply

wait("three users provisioned with userName, name, emails, title, enterprise department", lambda: all(
    anchor[name] in peer_users()
    and peer_users()[anchor[name]]["userName"] == f"{name}@{domain}"
    and peer_users()[anchor[name]].get("name", {}).get("givenName") == name.title()
    and any(email.get("value") == f"{name}@{domain}" for email in peer_users()[anchor[name]].get("emails", []))
    and peer_users()[anchor[name]].get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", {}).get("department") == "R&D"
    for name in people))

graph("PATCH", f"/users/{people['ada']}", {"jobTitle": "Lead Engineer"})
wait("a change flows (title)", lambda: peer_users().get(anchor["ada"], {}).get("title") == "Lead Engineer")

graph("PATCH", f"/users/{people['bob']}", {"accountEnabled": False})
wait("a disable flows (active false)", lambda: peer_users().get(anchor["bob"], {}).get("active") is False)

graph("DELETE", f"/users/{people['cy']}")
wait("a deprovision removes the user", lambda: anchor["cy"] not in peer_users())

def log_actions():
    status, logs = graph("GET", "/auditLogs/provisioning?$top=999&$filter=" + urllib.parse.quote(f"jobId eq '{job['id']}'"))
    assert status == 200, logs
    return sorted({(entry["provisioningAction"], entry["provisioningStatusInfo"]["status"]) for entry in logs["value"]})


wait("the provisioning log records the creates, updates, the disable and the delete", lambda: {
    ("create", "success"), ("update", "success"), ("disable", "success"), ("delete", "success")} <= set(log_actions()))
print("provisioning log actions:", log_actions())
held = peer_users()
assert len(held) == 2, held
print(f"peer holds {len(held)} users: " + ", ".join(user["userName"] for user in held.values()))
print("scim peer sync: all checks passed")
