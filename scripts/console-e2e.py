#!/usr/bin/env python3
"""End-to-end test of the web console in a real browser (Playwright driving Debian's Chromium).

Usage: console-e2e.py URL SOURCE_JSON TARGET_JSON READER_JSON SCREENSHOT_DIR

URL is a running `tenantsync serve`; the JSON files are `tenant create --json` (source, target) and
`app credential create --json` (a read-only credential of the source) outputs. `topology create` has already
configured a job from the source to the target with SyncAll off, so nothing is in scope yet.

The story: sign in, see the topology, open the job, pause it, configure it (sync every user, deletion threshold 1),
start it and watch the users arrive; preview a change with the dry run; provision a user on demand; delete a source
user, see the deletion held in the queue, approve it, and read the deletion's log entry; the audit log and the
expression tester. Then a read-only credential, signed in with the keyboard only, sees the job but has no control
and is refused when it posts anyway; with JavaScript off, filters, forms and job controls still work; and a form
without its CSRF token is refused. Each page is saved as docs/console/<name>.png.

The last line is "console e2e: all checks passed" when every check held.
"""

import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TIMEOUT_MS = 30_000
N_USERS = 5


def check(what: str) -> None:
    print(f"ok: {what}", flush=True)


class Graph:
    """A tiny Graph client for setting up what an administrator would change elsewhere (users in the source)."""

    def __init__(self, url: str, tenant: dict):
        self.url = url
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials",
            "client_id": tenant["clientId"],
            "client_secret": tenant["clientSecret"],
            "scope": "https://graph.microsoft.com/.default",
        }).encode()
        with urllib.request.urlopen(f"{url}/{tenant['id']}/oauth2/v2.0/token", form) as response:
            self.token = json.load(response)["access_token"]

    def call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/v1.0{path}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request) as response:
            text = response.read()
            return json.loads(text) if text else None


def shot(page: Page, shots: str, name: str) -> None:
    page.screenshot(path=os.path.join(shots, f"{name}.png"), full_page=True)


def sign_in(page: Page, url: str, tenant_key: str, client_id: str, secret: str) -> None:
    page.goto(f"{url}/console/")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.get_by_label("Tenant (id, name or domain)").fill(tenant_key)
    page.get_by_label("Client id").fill(client_id)
    page.get_by_label("Client secret").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Topology")).to_be_visible()


def open_first_job(page: Page, url: str) -> str:
    """Opens the first job listed on the jobs page; returns its path."""
    job_path = page.locator("main table a").first.get_attribute("href")
    page.goto(f"{url}{job_path}")
    expect(page.get_by_role("heading", name=re.compile(r"^Job "))).to_be_visible()
    return job_path


def main() -> int:
    if len(sys.argv) != 6:
        print(__doc__)
        return 2
    url, source_file, target_file, reader_file, shots = sys.argv[1:]
    source = json.load(open(source_file))
    target = json.load(open(target_file))
    reader = json.load(open(reader_file))
    os.makedirs(shots, exist_ok=True)
    domain = f"{source['name']}.onmicrosoft.test"

    graph = Graph(url, source)
    people = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov"][:N_USERS]
    user_ids = {}
    for name in people:
        nickname = name.split()[0].lower()
        created = graph.call("POST", "/users", {
            "accountEnabled": True, "displayName": name, "mailNickname": nickname,
            "userPrincipalName": f"{nickname}@{domain}", "jobTitle": "Engineer", "department": "Research",
            "passwordProfile": {"password": "Pw-1234567890!"},
        })
        user_ids[name] = created["id"]
    check(f"{len(people)} users created in {source['name']} through Graph")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        admin = browser.new_context(viewport={"width": 1280, "height": 900})
        admin.set_default_timeout(TIMEOUT_MS)
        page = admin.new_page()
        # Anything the browser reports as an error (a script blocked by the Content-Security-Policy, a failed
        # asset) fails the test at the end.
        problems = []
        page.on("console", lambda message: problems.append(f"{message.text} at {page.url} {message.location}") if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        try:
            run_admin(page, url, source, target, graph, user_ids, domain, shots)
            run_reader(browser, url, source, reader, shots)
            run_without_javascript(browser, url, source, user_ids)
            run_csrf(page, url, shots)
        except Exception:
            shot(page, shots, "failure")
            raise
        finally:
            browser.close()
    # The deliberately refused forms (403) are the only errors the browser may report.
    unexpected = [text for text in problems if "403" not in text]
    if unexpected:
        raise AssertionError(f"the browser reported errors: {unexpected}")
    check("no browser errors (no Content-Security-Policy violation, no failed asset)")
    print("console e2e: all checks passed", flush=True)
    return 0


def run_admin(page: Page, url: str, source: dict, target: dict, graph: Graph, user_ids: dict, domain: str,
              shots: str) -> None:
    page.goto(f"{url}/console/sign-in")
    shot(page, shots, "sign-in")
    sign_in(page, url, source["name"], source["clientId"], source["clientSecret"])
    check("signed in with the source tenant's app credential")

    topology = page.locator("svg.topology")
    expect(topology).to_be_visible()
    expect(topology).to_contain_text(target["name"])
    expect(topology).to_contain_text("outbound allowed")
    check("the topology shows the target partner, its consent and the job's arrow")
    shot(page, shots, "topology")

    page.get_by_role("navigation", name="Console").get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    shot(page, shots, "jobs")
    job_path = open_first_job(page, url)
    check(f"job page {job_path}")

    # Configure: pause, sync every user with a deletion threshold of 1, then start and watch users arrive.
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("paused")
    page.get_by_label("Sync every internal user", exact=False).check()
    page.get_by_label("Hold deletions over the threshold", exact=False).check()
    page.get_by_label("Deletion threshold", exact=False).fill("1")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_contain_text("Settings saved")
    check("configured the job from the console: SyncAll and a deletion threshold of 1")
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("started")
    # htmx polls the status every 2 seconds: the count rises without a reload.
    expect(page.locator("#synchronized-users")).to_have_text(str(len(user_ids)), timeout=60_000)
    expect(page.locator("#job-live")).to_contain_text("Ada Lovelace")
    check(f"watched {len(user_ids)} users arrive in {target['name']} on the job page")
    shot(page, shots, "job")

    # Dry run: pause, change a user in the source, preview.
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("paused")
    graph.call("PATCH", f"/users/{user_ids['Grace Hopper']}", {"jobTitle": "Rear Admiral"})
    page.get_by_role("link", name=re.compile("Dry run")).click()
    expect(page.get_by_role("heading", name=re.compile("^Dry run of"))).to_be_visible()
    expect(page.locator("main table")).to_contain_text("Engineer → Rear Admiral")
    check("the dry run lists the pending update as a table")
    shot(page, shots, "dry-run")
    page.goto(f"{url}{job_path}")
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("started")

    # Provision on demand, with the step trace.
    page.get_by_label("Source user", exact=False).fill(f"alan@{domain}")
    page.get_by_role("button", name="Provision now").click()
    expect(page.get_by_role("heading", name=re.compile("Provisioned on demand: Alan Turing"))).to_be_visible()
    expect(page.locator("ol.steps")).to_contain_text("EntryImport")
    check("provisioned a user on demand and saw its steps")
    shot(page, shots, "provision-on-demand")

    # A deletion over the threshold is held; approve it from the queue.
    victim = "Edsger Dijkstra"
    graph.call("DELETE", f"/users/{user_ids[victim]}")
    queues = page.get_by_role("navigation", name="Console").get_by_role("link", name="Queues")
    held = page.locator("tr", has_text=user_ids[victim]).get_by_role("button", name=re.compile(r"^Approve the "))
    deadline = time.monotonic() + 60
    while True:
        queues.click()
        expect(page.get_by_role("heading", name="Queues that need a decision")).to_be_visible()
        if held.count() == 1:
            break
        if time.monotonic() > deadline:
            raise AssertionError("the deletion was never staged")
        time.sleep(1)
    check("the deletion of a source user is held in the queue (threshold 1)")
    shot(page, shots, "queues")
    held.click()
    expect(page.get_by_role("status")).to_contain_text("Approved 1 held deletion")
    check("approved the held deletion")

    # The deletion's log entry, found with the filters.
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Provisioning logs").click()
    page.get_by_label("Action").select_option("delete")
    page.get_by_label("Source user", exact=False).fill(user_ids[victim])
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=delete"))
    rows = page.locator("main table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("success")
    shot(page, shots, "logs")
    rows.first.get_by_role("link").click()
    expect(page.get_by_role("heading", name=re.compile(f"delete of {victim}"))).to_be_visible()
    expect(page.locator("ol.steps")).to_contain_text("EntryExport")
    check("read the log entry of the approved deletion (steps, modified properties)")
    shot(page, shots, "log-entry")

    page.get_by_role("navigation", name="Console").get_by_role("link", name="Audit logs").click()
    expect(page.get_by_role("heading", name="Audit logs")).to_be_visible()
    expect(page.locator("main table")).to_contain_text("Disable/pause provisioning configuration")
    check("the audit log shows the console's configuration changes")
    shot(page, shots, "audit")

    page.get_by_role("navigation", name="Console").get_by_role("link", name="Expression tester").click()
    page.get_by_label("Expression, filter or rule").fill('Join(" ", [givenName], [surname])')
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("#tester-answer")).to_contain_text("Ada Lovelace")
    check("the expression tester evaluates a mapping")
    shot(page, shots, "tester")

    page.get_by_role("navigation", name="Console").get_by_role("link", name="Topology").click()
    expect(page.locator("svg.topology")).to_contain_text("guard 1")
    shot(page, shots, "topology")

    target_admin = Graph(url, target)
    live = target_admin.call("GET", "/users?$top=999")["value"]
    names = sorted(user["displayName"] for user in live)
    if victim in names or "Ada Lovelace" not in names:
        raise AssertionError(f"unexpected users in the target: {names}")
    check(f"the target holds {len(names)} synced users and not the deleted one")


def run_reader(browser, url: str, source: dict, reader: dict, shots: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    # Signed in with the keyboard only: the tenant field has the focus, Tab moves on, Enter submits.
    page.goto(f"{url}/console/sign-in")
    expect(page.get_by_label("Tenant (id, name or domain)")).to_be_focused()
    page.keyboard.type(source["name"])
    page.keyboard.press("Tab")
    page.keyboard.type(reader["clientId"])
    page.keyboard.press("Tab")
    page.keyboard.type(reader["clientSecret"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Topology")).to_be_visible()
    check("signed in with the keyboard only")
    expect(page.locator("header")).to_contain_text("read-only")
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    job_path = open_first_job(page, url)
    expect(page.get_by_text("This credential is read-only")).to_be_visible()
    if page.get_by_role("button", name="Pause", exact=True).count() or page.get_by_role("button", name="Start", exact=True).count():
        raise AssertionError("a read-only credential sees job controls")
    check("a read-only credential sees the job without its controls")
    shot(page, shots, "read-only-job")
    # Posting the pause form anyway, with the session's own CSRF token, is refused by the server.
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
    refused = context.request.post(f"{url}{job_path}/pause", form={"csrf": csrf}, max_redirects=0)
    if refused.status != 403 or "Not allowed" not in refused.text():
        raise AssertionError(f"read-only pause answered {refused.status}")
    check("the server refuses the read-only credential's pause (403)")
    context.close()


def run_without_javascript(browser, url: str, source: dict, user_ids: dict) -> None:
    """The same console with JavaScript off: links, GET filters and POST forms all work."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    sign_in(page, url, source["name"], source["clientId"], source["clientSecret"])
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Provisioning logs").click()
    page.get_by_label("Action").select_option("create")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=create"))
    expect(page.locator("main table")).to_contain_text("Ada Lovelace")
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Expression tester").click()
    page.get_by_label("Expression, filter or rule").fill("ToUpper([surname])")
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("#tester-answer")).to_contain_text("LOVELACE")
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Jobs").click()
    job_path = open_first_job(page, url)
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("paused")
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("started")
    check(f"without JavaScript: log filters, the tester and job controls ({job_path}) work")
    context.close()


def run_csrf(page: Page, url: str, shots: str) -> None:
    # A real browser form without the CSRF token, posted to a job action: refused with a page that says why.
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    job_path = open_first_job(page, url)
    page.evaluate(
        """(action) => {
            const form = document.createElement('form');
            form.method = 'post';
            form.action = action;
            document.body.appendChild(form);
            HTMLFormElement.prototype.submit.call(form);
        }""",
        f"{job_path}/pause",
    )
    expect(page.get_by_role("heading", name="Form refused")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("security token")
    check("a form without its CSRF token is refused (403 page)")
    shot(page, shots, "csrf-refused")
    status = page.context.request.post(f"{url}{job_path}/pause", form={}, max_redirects=0).status
    if status != 403:
        raise AssertionError(f"a POST without a CSRF token answered {status}")


if __name__ == "__main__":
    sys.exit(main())
