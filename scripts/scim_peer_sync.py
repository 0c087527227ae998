#!/usr/bin/env python3
"""Provision users from a tenantsync tenant into a SCIM server written by others, then change, disable and
deprovision some, and check what that server holds. Then groups: enable the group object mapping, assign a group,
check the server's /Groups holds it with exactly the expected members, change membership and the name in the source,
unassign it (gone from the server), assign it again (created again), and check a same-named group of the server's
own is never touched. Standard library only.

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


def peer_groups():
    status, reply = request(scim_base + "/Groups?count=1000", token=scim_token)
    assert status == 200, (status, reply)
    return reply.get("Resources", [])


def wait(label, check, deadline=30, show=None):
    started = time.time()
    while time.time() - started < deadline:
        if check():
            print(f"ok   {label} ({time.time() - started:.2f} s)")
            return
        time.sleep(0.1)
    print(f"FAIL {label}: peer holds {json.dumps(show() if show else peer_users(), indent=1)[:3000]}")
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

# --- Groups: the group object mapping on, a group assigned, its members and changes in the server's /Groups.
for name, title in [("dee", "Pilot"), ("eve", "Navigator")]:
    status, user = graph("POST", "/users", {"accountEnabled": True, "displayName": name.title(), "givenName": name.title(),
                                            "surname": "Peer", "mailNickname": name, "userPrincipalName": f"{name}@{domain}",
                                            "mail": f"{name}@{domain}", "jobTitle": title, "department": "R&D"})
    assert status == 201, user
    people[name] = user["id"]
    anchor[name] = f"{tenant['id']}/{user['id']}"
status, sales = graph("POST", "/groups", {"displayName": "Sales", "mailNickname": "sales", "mailEnabled": False,
                                          "securityEnabled": True})
assert status == 201, sales
group_anchor = f"{tenant['id']}/{sales['id']}"
for name in ["ada", "dee"]:
    status, reply = graph("POST", f"/groups/{sales['id']}/members/$ref",
                          {"@odata.id": f"{base}/v1.0/directoryObjects/{people[name]}"})
    assert status == 204, reply
# A group of the server's own with the same name: sync never touches it.
status, theirs = request(scim_base + "/Groups", "POST", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                                         "displayName": "Sales"}, scim_token)
assert status == 201, theirs

status, schema = graph("GET", f"/servicePrincipals/{sp}/synchronization/jobs/{job['id']}/schema")
assert status == 200, schema
group_mapping = [m for m in schema["synchronizationRules"][0]["objectMappings"] if m["sourceObjectName"] == "Group"][0]
assert group_mapping["enabled"] is False, group_mapping
group_mapping["enabled"] = True
status, reply = graph("PUT", f"/servicePrincipals/{sp}/synchronization/jobs/{job['id']}/schema", schema)
assert status == 204, reply
app_role = app["servicePrincipal"]["appRoles"][0]["id"]


def assign(group_id):
    status, reply = graph("POST", f"/servicePrincipals/{sp}/appRoleAssignedTo",
                          {"appRoleId": app_role, "resourceId": sp, "principalId": group_id})
    assert status == 201, reply
    return reply["id"]


def synced_group():
    found = [group for group in peer_groups() if group.get("externalId") == group_anchor]
    assert len(found) <= 1, found
    return found[0] if found else None


def has_members(display_name, names):
    group = synced_group()
    if not group or group.get("displayName") != display_name:
        return False
    users = peer_users()
    if not all(anchor[name] in users for name in names):
        return False
    wanted = sorted(users[anchor[name]]["id"] for name in names)
    return sorted(member["value"] for member in group.get("members", [])) == wanted


assignment = assign(sales["id"])
wait("the assigned group arrives with exactly its members (externalId = the anchor)",
     lambda: has_members("Sales", ["ada", "dee"]), show=peer_groups)
status, reply = graph("POST", f"/groups/{sales['id']}/members/$ref",
                      {"@odata.id": f"{base}/v1.0/directoryObjects/{people['eve']}"})
assert status == 204, reply
status, reply = graph("DELETE", f"/groups/{sales['id']}/members/{people['ada']}/$ref")
assert status == 204, reply
wait("a membership change arrives (eve added, ada removed)", lambda: has_members("Sales", ["dee", "eve"]),
     show=peer_groups)
status, reply = graph("PATCH", f"/groups/{sales['id']}", {"displayName": "Sales EMEA"})
assert status == 204, reply
wait("a rename arrives (displayName)", lambda: has_members("Sales EMEA", ["dee", "eve"]), show=peer_groups)
status, reply = graph("DELETE", f"/servicePrincipals/{sp}/appRoleAssignedTo/{assignment}")
assert status == 204, reply
wait("an unassigned group is deleted from the server", lambda: synced_group() is None, show=peer_groups)
assert anchor["ada"] in peer_users(), "ada stays (in scope through SyncAll)"
assignment = assign(sales["id"])
wait("assigned again, the group is created again with its members", lambda: has_members("Sales EMEA", ["dee", "eve"]),
     show=peer_groups)
status, theirs_now = request(scim_base + "/Groups/" + theirs["id"], token=scim_token)
assert status == 200 and theirs_now["displayName"] == "Sales" and not theirs_now.get("members"), theirs_now


def group_log_actions():
    status, logs = graph("GET", "/auditLogs/provisioning?$top=999&$filter=" + urllib.parse.quote(f"jobId eq '{job['id']}'"))
    assert status == 200, logs
    return sorted({(entry["provisioningAction"], entry["provisioningStatusInfo"]["status"]) for entry in logs["value"]
                   if entry["sourceIdentity"]["identityType"] == "Group"})


wait("the provisioning log records the group's create, update and delete", lambda: {
    ("create", "success"), ("update", "success"), ("delete", "success")} <= set(group_log_actions()),
    show=group_log_actions)
print("group provisioning log actions:", group_log_actions())
assert not [action for action in group_log_actions() if action[1] == "failure"], group_log_actions()
print("peer holds groups: " + ", ".join(f"{group['displayName']} ({len(group.get('members', []))} member(s))"
                                        for group in peer_groups()))
print("scim peer sync: all checks passed")
