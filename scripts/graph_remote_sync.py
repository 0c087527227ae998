#!/usr/bin/env python3
"""Sync between two tenantsync servers through the Graph connector, and check what each holds. Standard library only.

Job 1 lives in alpha (server A); its target is beta on server B (secrets BaseAddress + TokenEndpoint + beta's
credential). Job 2 lives in gamma (server A); its source is delta on server B (Source* secrets), its target gamma
itself. Each job goes through create, update (title, manager), disable, delete and restore. Job 1 also provisions
an assigned group into beta (members, a membership change, a rename, unassign = soft delete, reassign = restore).

Usage: graph_remote_sync.py URL_A ALPHA_JSON GAMMA_JSON URL_B BETA_JSON DELTA_JSON
"""
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

url_a, alpha_file, gamma_file, url_b, beta_file, delta_file = sys.argv[1:7]
alpha, gamma = json.load(open(alpha_file)), json.load(open(gamma_file))
beta, delta = json.load(open(beta_file)), json.load(open(delta_file))
NO_GUARD = "{\"Enabled\":false,\"DeleteThresholdEnabled\":false}"


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


class Tenant:
    def __init__(self, base, tenant):
        self.base, self.tenant = base, tenant
        self.id = tenant["id"]
        self.token_endpoint = f"{base}/{self.id}/oauth2/v2.0/token"
        status, reply = request(self.token_endpoint, "POST", form={
            "grant_type": "client_credentials", "client_id": tenant["clientId"],
            "client_secret": tenant["clientSecret"], "scope": "https://graph.microsoft.com/.default"})
        assert status == 200, reply
        self.token = reply["access_token"]

    def graph(self, method, path, body=None, expect=None):
        status, reply = request(self.base + "/v1.0" + path, method, body, self.token)
        if expect is not None:
            assert status == expect, (method, path, status, reply)
        return status, reply

    def remote_secrets(self, prefix=""):
        """The secrets that name this tenant as a remote Graph tenant."""
        return [{"key": prefix + "BaseAddress", "value": self.base + "/v1.0"},
                {"key": prefix + "TokenEndpoint", "value": self.token_endpoint},
                {"key": prefix + "ClientId", "value": self.tenant["clientId"]},
                {"key": prefix + "ClientSecret", "value": self.tenant["clientSecret"]},
                {"key": prefix + "CompanyId", "value": self.id}]

    def user(self, user_id):
        status, reply = self.graph("GET", f"/users/{user_id}")
        return reply if status == 200 else None

    def deleted(self, user_id):
        status, _ = self.graph("GET", f"/directory/deletedItems/{user_id}")
        return status == 200

    def by_anchor(self, issuer, oid, deleted=False):
        collection = "/directory/deletedItems/microsoft.graph.user" if deleted else "/users"
        query = urllib.parse.quote(f"identities/any(c:c/issuer eq '{issuer}' and c/issuerAssignedId eq '{oid}')")
        status, reply = self.graph("GET", f"{collection}?$filter={query}")
        assert status == 200, reply
        return reply["value"][0] if reply["value"] else None

    def manager(self, user_id):
        status, reply = self.graph("GET", f"/users/{user_id}/manager")
        return reply["id"] if status == 200 else None

    def people(self, domain, names):
        ids = {}
        for name, title in names:
            _, user = self.graph("POST", "/users", {
                "accountEnabled": True, "displayName": name.title(), "givenName": name.title(), "surname": "Remote",
                "mailNickname": name, "userPrincipalName": f"{name}@{domain}", "mail": f"{name}@{domain}",
                "jobTitle": title, "department": "R&D"}, expect=201)
            ids[name] = user["id"]
        return ids

    def job(self, label, secrets):
        _, app = self.graph("POST", "/applicationTemplates/518e5f48-1fc8-4c48-9387-9fdf28b0dfe7/instantiate",
                            {"displayName": label}, expect=201)
        sp = app["servicePrincipal"]["id"]
        self.app_role = app["servicePrincipal"]["appRoles"][0]["id"]
        _, job = self.graph("POST", f"/servicePrincipals/{sp}/synchronization/jobs", {"templateId": "Azure2Azure"},
                            expect=201)
        self.graph("PUT", f"/servicePrincipals/{sp}/synchronization/secrets", {"value": secrets + [
            {"key": "SyncAll", "value": "true"}, {"key": "SyncNotificationSettings", "value": NO_GUARD}]}, expect=204)
        self.graph("POST", f"/servicePrincipals/{sp}/synchronization/jobs/{job['id']}/start", expect=204)
        self.sp = sp
        return sp, job["id"]

    def failures(self, job_id):
        _, status = self.graph("GET", f"/servicePrincipals/{self.sp}/synchronization/jobs/{job_id}")
        query = urllib.parse.quote(f"jobId eq '{job_id}'")
        _, logs = self.graph("GET", f"/auditLogs/provisioning?$top=999&$filter={query}", expect=200)
        return [status.get("status")] + [entry["provisioningStatusInfo"] for entry in logs["value"]
                if entry["provisioningStatusInfo"]["status"] != "success"][-3:] or logs["value"][-2:]

    def enable_groups(self, job_id):
        """GET the schema, enable "Provision Microsoft Entra ID Groups", PUT it back."""
        path = f"/servicePrincipals/{self.sp}/synchronization/jobs/{job_id}/schema"
        _, schema = self.graph("GET", path, expect=200)
        mapping = [m for m in schema["synchronizationRules"][0]["objectMappings"] if m["sourceObjectName"] == "Group"]
        mapping[0]["enabled"] = True
        self.graph("PUT", path, schema, expect=204)

    def assign(self, principal_id):
        _, reply = self.graph("POST", f"/servicePrincipals/{self.sp}/appRoleAssignedTo",
                              {"appRoleId": self.app_role, "resourceId": self.sp, "principalId": principal_id},
                              expect=201)
        return reply["id"]

    def synced_group(self, issuer, oid, deleted=False):
        """The group carrying the origin marker (issuer, oid), live or soft-deleted."""
        collection = "/directory/deletedItems/microsoft.graph.group" if deleted else "/groups"
        query = urllib.parse.quote(f"crossTenantSynchronizationResource/originTenantId eq '{issuer}' and "
                                   f"crossTenantSynchronizationResource/originId eq '{oid}'")
        _, reply = self.graph("GET", f"{collection}?$filter={query}", expect=200)
        assert len(reply["value"]) <= 1, reply
        return reply["value"][0] if reply["value"] else None

    def member_ids(self, group_id):
        _, reply = self.graph("GET", f"/groups/{group_id}/members", expect=200)
        return sorted(member["id"] for member in reply["value"])

    def log_actions(self, job_id):
        query = urllib.parse.quote(f"jobId eq '{job_id}'")
        _, logs = self.graph("GET", f"/auditLogs/provisioning?$top=999&$filter={query}", expect=200)
        return {(entry["provisioningAction"], entry["provisioningStatusInfo"]["status"]) for entry in logs["value"]}


def wait(label, check, show, deadline=40):
    started = time.time()
    while time.time() - started < deadline:
        try:
            if check():
                print(f"ok   {label} ({time.time() - started:.2f} s)")
                return
        except (KeyError, TypeError, IndexError):
            pass
        time.sleep(0.2)
    print(f"FAIL {label}: {json.dumps(show(), indent=1)[:3000]}")
    sys.exit(1)


a_alpha, a_gamma = Tenant(url_a, alpha), Tenant(url_a, gamma)
b_beta, b_delta = Tenant(url_b, beta), Tenant(url_b, delta)
beta_domain = "beta.onmicrosoft.test"

# --- Job 1: alpha (server A, local source) -> beta (server B, remote Graph target).
print("job 1: alpha on A -> beta on B (GraphTarget)")
src = a_alpha.people("alpha.example", [("ada", "Engineer"), ("bob", "Analyst"), ("cy", "Designer")])
a_alpha.graph("PUT", f"/users/{src['bob']}/manager/$ref",
              {"@odata.id": f"{url_a}/v1.0/directoryObjects/{src['ada']}"}, expect=204)
_, job1 = a_alpha.job("beta on server B", b_beta.remote_secrets())
held = lambda name: b_beta.by_anchor(alpha["id"], src[name])
show1 = lambda: {"holds": {name: held(name) for name in src}, "failures": a_alpha.failures(job1)}
wait("three B2B users created in beta on B, anchored to alpha (identities, alternativeSecurityIds, #EXT# UPN)",
     lambda: all(held(name) and held(name)["userPrincipalName"] == f"{name}_alpha.example#EXT#@{beta_domain}"
                 and held(name)["creationType"] == "Invitation" and held(name)["externalUserState"] == "Accepted"
                 and held(name)["alternativeSecurityIds"][0]["identityProvider"] == alpha["id"]
                 and held(name)["jobTitle"] and held(name)["department"] == "R&D" for name in src), show1)
wait("the manager reference follows (bob's manager is ada's B2B user)",
     lambda: b_beta.manager(held("bob")["id"]) == held("ada")["id"], show1)
a_alpha.graph("PATCH", f"/users/{src['ada']}", {"jobTitle": "Lead Engineer"}, expect=204)
wait("an update flows (jobTitle)", lambda: held("ada")["jobTitle"] == "Lead Engineer", show1)
a_alpha.graph("PATCH", f"/users/{src['bob']}", {"accountEnabled": False}, expect=204)
wait("a disable flows (accountEnabled false)", lambda: held("bob")["accountEnabled"] is False, show1)
cy_remote = held("cy")["id"]
a_alpha.graph("DELETE", f"/users/{src['cy']}", expect=204)
wait("a delete flows (cy soft-deleted in beta)", lambda: b_beta.user(cy_remote) is None and b_beta.deleted(cy_remote),
     show1)
a_alpha.graph("POST", f"/directory/deletedItems/{src['cy']}/restore", expect=200)
wait("a restore flows (the same beta user is back)", lambda: (b_beta.user(cy_remote) or {}).get("id") == cy_remote,
     show1)
wait("job 1's provisioning log records create, update, disable, delete",
     lambda: {("create", "success"), ("update", "success"), ("disable", "success"), ("delete", "success")}
     <= a_alpha.log_actions(job1), lambda: sorted(a_alpha.log_actions(job1)))
print("job 1 log actions:", sorted(a_alpha.log_actions(job1)))

# --- Job 1, groups: an assigned group of alpha becomes a static security group in beta on B (POST /groups with the
# origin marker crossTenantSynchronizationResource, members through members/$ref), follows membership changes, is
# soft-deleted when unassigned and restored (the same group) when assigned again; beta's own same-named group stays.
_, theirs = b_beta.graph("POST", "/groups", {"displayName": "Crew", "mailNickname": "crew", "mailEnabled": False,
                                              "securityEnabled": True}, expect=201)
_, crew = a_alpha.graph("POST", "/groups", {"displayName": "Crew", "mailNickname": "crew", "mailEnabled": False,
                                             "securityEnabled": True}, expect=201)
for name in ["ada", "bob"]:
    a_alpha.graph("POST", f"/groups/{crew['id']}/members/$ref",
                  {"@odata.id": f"{url_a}/v1.0/directoryObjects/{src[name]}"}, expect=204)
a_alpha.enable_groups(job1)
crew_assignment = a_alpha.assign(crew["id"])
remote_crew = lambda: b_beta.synced_group(alpha["id"], crew["id"])
crew_members = lambda names: sorted(held(name)["id"] for name in names)
show_groups = lambda: {"crew": remote_crew(), "members": remote_crew() and b_beta.member_ids(remote_crew()["id"]),
                       "failures": a_alpha.failures(job1)}
wait("the assigned group arrives in beta on B with exactly its members' B2B users (origin marker set)",
     lambda: remote_crew()["displayName"] == "Crew" and remote_crew()["securityEnabled"] is True
     and remote_crew()["mailEnabled"] is False and b_beta.member_ids(remote_crew()["id"]) == crew_members(["ada", "bob"]),
     show_groups)
crew_remote_id = remote_crew()["id"]
a_alpha.graph("DELETE", f"/groups/{crew['id']}/members/{src['bob']}/$ref", expect=204)
a_alpha.graph("POST", f"/groups/{crew['id']}/members/$ref",
              {"@odata.id": f"{url_a}/v1.0/directoryObjects/{src['cy']}"}, expect=204)
wait("a membership change arrives (bob removed, cy added)",
     lambda: b_beta.member_ids(crew_remote_id) == crew_members(["ada", "cy"]), show_groups)
a_alpha.graph("PATCH", f"/groups/{crew['id']}", {"displayName": "Crew EMEA"}, expect=204)
wait("a rename arrives (displayName)", lambda: remote_crew()["displayName"] == "Crew EMEA", show_groups)
# The marker is the sync's: nobody changes it afterwards.
b_beta.graph("PATCH", f"/groups/{crew_remote_id}", {"crossTenantSynchronizationResource": {
    "originTenantId": alpha["id"], "originId": theirs["id"]}}, expect=400)
a_alpha.graph("DELETE", f"/servicePrincipals/{a_alpha.sp}/appRoleAssignedTo/{crew_assignment}", expect=204)
wait("an unassigned group is soft-deleted in beta",
     lambda: remote_crew() is None and b_beta.synced_group(alpha["id"], crew["id"], deleted=True)["id"] == crew_remote_id,
     show_groups)
a_alpha.assign(crew["id"])
wait("assigned again, the same group is restored with its members",
     lambda: remote_crew()["id"] == crew_remote_id and b_beta.member_ids(crew_remote_id) == crew_members(["ada", "cy"]),
     show_groups)
_, theirs_now = b_beta.graph("GET", f"/groups/{theirs['id']}", expect=200)
assert theirs_now["displayName"] == "Crew" and not theirs_now.get("crossTenantSynchronizationResource"), theirs_now
assert b_beta.member_ids(theirs["id"]) == [], "beta's own group is never touched"
print("job 1 log actions with groups:", sorted(a_alpha.log_actions(job1)))

# --- Job 2: delta (server B, remote Graph source) -> gamma (server A, local target; the job lives in gamma).
print("job 2: delta on B -> gamma on A (GraphSource)")
ext = b_delta.people("delta.example", [("dee", "Pilot"), ("eve", "Navigator"), ("fay", "Engineer")])
b_delta.graph("PUT", f"/users/{ext['eve']}/manager/$ref",
              {"@odata.id": f"{url_b}/v1.0/directoryObjects/{ext['dee']}"}, expect=204)
# Gamma's own consent for users issued by delta (the target half; delta's credential is the source half).
a_gamma.graph("POST", "/policies/crossTenantAccessPolicy/partners", {"tenantId": delta["id"]}, expect=201)
a_gamma.graph("PUT", f"/policies/crossTenantAccessPolicy/partners/{delta['id']}/identitySynchronization",
              {"displayName": "delta", "userSyncInbound": {"isSyncAllowed": True}}, expect=204)
a_gamma.graph("PATCH", f"/policies/crossTenantAccessPolicy/partners/{delta['id']}",
              {"automaticUserConsentSettings": {"inboundAllowed": True}}, expect=204)
_, job2 = a_gamma.job("delta on server B", b_delta.remote_secrets("Source") + [
    {"key": "SourcePollIntervalSeconds", "value": "1"}, {"key": "CompanyId", "value": gamma["id"]}])
got = lambda name: a_gamma.by_anchor(delta["id"], ext[name])
show2 = lambda: {"holds": {name: got(name) for name in ext}, "failures": a_gamma.failures(job2)}
wait("three B2B users created in gamma on A, anchored to delta",
     lambda: all(got(name) and got(name)["userPrincipalName"] == f"{name}_delta.example#EXT#@gamma.onmicrosoft.test"
                 and got(name)["department"] == "R&D" for name in ext), show2)
wait("the manager reference follows (eve's manager is dee's B2B user)",
     lambda: a_gamma.manager(got("eve")["id"]) == got("dee")["id"], show2)
b_delta.graph("PATCH", f"/users/{ext['dee']}", {"jobTitle": "Captain"}, expect=204)
wait("an update flows through the remote delta (jobTitle)", lambda: got("dee")["jobTitle"] == "Captain", show2)
b_delta.graph("PATCH", f"/users/{ext['eve']}", {"accountEnabled": False}, expect=204)
wait("a disable flows (accountEnabled false)", lambda: got("eve")["accountEnabled"] is False, show2)
fay_local = got("fay")["id"]
b_delta.graph("DELETE", f"/users/{ext['fay']}", expect=204)
wait("a delete flows (fay soft-deleted in gamma)",
     lambda: a_gamma.user(fay_local) is None and a_gamma.deleted(fay_local), show2)
b_delta.graph("POST", f"/directory/deletedItems/{ext['fay']}/restore", expect=200)
wait("a restore flows (the same gamma user is back)", lambda: (a_gamma.user(fay_local) or {}).get("id") == fay_local,
     show2)
wait("job 2's provisioning log records create, update, disable, delete",
     lambda: {("create", "success"), ("update", "success"), ("disable", "success"), ("delete", "success")}
     <= a_gamma.log_actions(job2), lambda: sorted(a_gamma.log_actions(job2)))
print("job 2 log actions:", sorted(a_gamma.log_actions(job2)))

_, beta_users = b_beta.graph("GET", "/users?$select=userPrincipalName,accountEnabled,jobTitle", expect=200)
_, gamma_users = a_gamma.graph("GET", "/users?$select=userPrincipalName,accountEnabled,jobTitle", expect=200)
print("beta on B holds:", ", ".join(f"{u['userPrincipalName']} ({u['jobTitle']}, enabled={u['accountEnabled']})"
                                    for u in beta_users["value"]))
print("gamma on A holds:", ", ".join(f"{u['userPrincipalName']} ({u['jobTitle']}, enabled={u['accountEnabled']})"
                                     for u in gamma_users["value"]))
print("graph remote sync: all checks passed")
