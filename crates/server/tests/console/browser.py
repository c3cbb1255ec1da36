"""Drives the shedu web console in Debian's Chromium through Playwright (never a downloaded browser).

Run by crates/server/tests/console_browser.rs (and scripts/screenshots, which sets SCREENSHOTS):
    browser.py BASE_URL ADMIN_USER AUDITOR_USER PASSWORD CSR_FILE CA_FILE ADMIN_TOKEN
A device's EST enrolment is driven by curl (with the admin token) while the browser watches.
Prints one line per step; any failed expectation raises, and the test fails with the output.
"""

import base64
from datetime import datetime, timedelta
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

from playwright.sync_api import expect, sync_playwright

base, admin, auditor, password, csr_file, ca_file, token = sys.argv[1:8]
csr = open(csr_file).read()
work = os.path.dirname(csr_file)
shots = os.environ.get("SCREENSHOTS")
CHROMIUM = os.environ.get("SHEDU_CHROMIUM", "/usr/bin/chromium")


def step(text):
    print(f"step: {text}", flush=True)


def shot(page, name):
    if shots:
        page.screenshot(path=os.path.join(shots, f"{name}.png"), full_page=False)


def sign_in(page, user):
    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/ui/$"))
    page.fill("#login-form input[name=username]", user)
    page.fill("#login-form input[name=password]", password)
    page.click("#login-form button[type=submit]")
    expect(page.locator(".whoami .who")).to_have_text(user)


def sign_out(page):
    page.click("#sign-out")
    expect(page.locator("#login-form")).to_be_visible()


TITLES = {
    "cas": "Certificate authorities",
    "certificates": "Certificates",
    "ras": "Registration authorities",
    "events": "Events",
    "dashboard": "Dashboard",
    "audit": "Audit log",
    "devices": "Devices",
    "alerts": "Alerts",
    "connectors": "Connectors",
    "rotation": "Assets and rotation",
    "kmip": "KMIP objects",
    "secrets": "Secrets",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver(http.server.BaseHTTPRequestHandler):
    """A webhook receiver that records what it is sent."""
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Receiver.received.append((self.headers.get("X-Shedu-Event-Type"), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_):
        pass


def until(page, check, what, button=None, tries=60):
    """Clicks `button` (a refresh) until `check()` holds: for state the server reaches on its own."""
    for _ in range(tries):
        if button:
            page.click(button)
            page.wait_for_timeout(250)
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"never: {what}")


def curl(*args):
    out = subprocess.run(["curl", "-fsS", "--cacert", ca_file, *args], check=True, capture_output=True)
    return out.stdout


def api(method, path, body=None):
    extra = ["--json", json.dumps(body)] if body is not None else []
    out = curl("-H", f"Authorization: Bearer {token}", "-X", method, *extra, f"{base}{path}")
    return json.loads(out) if out else None


def enrol(device, ra_id):
    """What a device does (docs/devices-and-est.md): a key, a CSR, simpleenroll with its one-time secret."""
    api("POST", "/api/v1/devices", {"id": device, "ra_id": ra_id})
    secret = api("POST", f"/api/v1/devices/{device}/enrollment-secret")["secret"]
    der = os.path.join(work, f"{device}.csr.der")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", os.path.join(work, f"{device}.key"), "-subj", f"/CN={device}", "-outform", "DER",
                    "-out", der], check=True, capture_output=True)
    b64 = os.path.join(work, f"{device}.csr.b64")
    with open(b64, "wb") as f:
        f.write(base64.b64encode(open(der, "rb").read()))
    curl("-u", f"{device}:{secret}", "-H", "Content-Type: application/pkcs10", "--data-binary", f"@{b64}",
         f"{base}/.well-known/est/{ra_id}/simpleenroll")


def go(page, name):
    """Follows the sidebar link to a page and waits until that page (not the one before) is shown."""
    page.click(f"nav a[href='#/{name}']")
    expect(page.locator("#content h1")).to_have_text(TITLES[name])


def submit_dialog(page, form):
    page.click(f"#{form} button[type=submit]")


def main(p):
    browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
    # The test server's TLS CA is its own; the browser is told to accept it (Secure cookies still apply).
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1360, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15000)
    messages, errors = [], []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: errors.append(str(e)))
    failure = os.environ.get("SHEDU_CONSOLE_FAILURE")

    def report(*_):
        # On a failed expectation, what the page said (and showed) helps more than the timeout alone.
        print("browser console:", *messages, "page errors:", *errors, sep="\n", file=sys.stderr)
        if failure:
            page.screenshot(path=failure)

    sys.excepthook = lambda *exc: (report(), sys.__excepthook__(*exc))

    step("the login page, then a wrong password shows the API's problem")
    page.goto(f"{base}/")
    shot(page, "login")
    page.fill("#login-form input[name=username]", admin)
    page.fill("#login-form input[name=password]", "not the password")
    page.click("#login-form button[type=submit]")
    expect(page.locator(".login-card .error")).to_contain_text("invalid user name or password")

    step("sign in as an admin: the session cookie is HttpOnly, Secure and SameSite=Strict")
    sign_in(page, admin)
    cookies = {c["name"]: c for c in context.cookies()}
    session = cookies["__Host-shedu-session"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict", session
    assert page.evaluate("document.cookie") == "", "the session cookie is not readable by scripts"

    step("create a root CA")
    go(page, "cas")
    page.click("#new-root")
    page.fill("#ca-form input[name=name]", "browser-root")
    page.fill("#ca-form input[name=cn]", "Browser Root CA")
    page.fill("#ca-form input[name=org]", "Shedu Test Plant")
    submit_dialog(page, "ca-form")
    expect(page.locator("#content table").first).to_contain_text("browser-root")

    step("the same name again: the API's problem appears in the form")
    page.click("#new-root")
    page.fill("#ca-form input[name=name]", "browser-root")
    page.fill("#ca-form input[name=cn]", "Browser Root CA")
    submit_dialog(page, "ca-form")
    expect(page.locator("#ca-form [role=alert]:not(:empty)").first).to_contain_text("browser-root")
    page.click("dialog .close")

    step("create an intermediate CA under it")
    page.click("#new-intermediate")
    page.fill("#ca-form input[name=name]", "browser-issuing")
    page.fill("#ca-form input[name=cn]", "Browser Issuing CA")
    page.select_option("#ca-form select[name=parent_id]", label="browser-root")
    submit_dialog(page, "ca-form")
    row = page.locator("tr", has_text="browser-issuing")
    expect(row).to_contain_text("intermediate")
    expect(page.locator(".depth-1")).to_contain_text("browser-issuing")
    shot(page, "cas")

    step("edit the intermediate's issuance profile: the server's refusal shows next to the field")
    page.click("button[data-edit-profile='browser-issuing']")
    expect(page.locator("#profile-form input[name=default_validity_days]")).to_have_value("365")
    page.fill("#profile-form input[name=default_validity_days]", "0")
    submit_dialog(page, "profile-form")
    expect(page.locator("#profile-form [data-field=default_validity_days] .field-error")).to_contain_text("at least 1")
    page.fill("#profile-form input[name=default_validity_days]", "120")
    page.fill("#profile-form input[name=allowed_key_types]", "ec-p256, no-such-key")
    submit_dialog(page, "profile-form")
    expect(page.locator("#profile-form [data-field=allowed_key_types] .field-error")).to_contain_text("no-such-key")
    page.fill("#profile-form input[name=allowed_key_types]", "ec-p256, ec-p384")
    submit_dialog(page, "profile-form")
    expect(page.locator("#profile-form")).to_have_count(0)
    issuing = next(c for c in api("GET", "/api/v1/cas")["items"] if c["name"] == "browser-issuing")
    assert issuing["profile"]["default_validity_days"] == 120, issuing["profile"]
    assert issuing["profile"]["allowed_key_types"] == ["ec-p256", "ec-p384"], issuing["profile"]

    step("issue a certificate from a pasted CSR")
    go(page, "certificates")
    page.click("#issue")
    page.select_option("#issue-form select[name=ca]", label="browser-issuing")
    page.fill("#issue-form textarea[name=csr_pem]", "not a CSR")
    submit_dialog(page, "issue-form")
    expect(page.locator("#issue-form [data-field=csr_pem] .field-error")).not_to_be_empty()
    page.fill("#issue-form textarea[name=csr_pem]", csr)
    page.fill("#issue-form input[name=validity_days]", "200")
    submit_dialog(page, "issue-form")
    expect(page.locator("#content h1")).to_contain_text("browser-device.example")
    expect(page.locator("dd[data-key=status]")).to_have_text("active")
    serial = page.locator("dd[data-key=serial]").inner_text().strip()
    with page.expect_download() as download:
        page.click("#download-chain")
    chain = open(download.value.path()).read()
    assert chain.count("-----BEGIN CERTIFICATE-----") == 3, chain  # the leaf, the intermediate, the root
    verified = subprocess.run(["openssl", "verify", "-partial_chain", "-CAfile", download.value.path(),
                               download.value.path()], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    shot(page, "certificate")

    step("find it by filter")
    go(page, "certificates")
    page.fill("#cert-filters input[name=subject]", "browser-device")
    page.select_option("#cert-filters select[name=status]", "active")
    page.click("#cert-filters button[type=submit]")
    expect(page.locator("#cert-results tbody tr")).to_have_count(1)
    expect(page.locator("#cert-results")).to_contain_text(serial)
    shot(page, "certificates")
    page.click(f"#cert-results a:has-text('browser-device.example')")

    step("revoke it with a reason and see the status change")
    page.click("#revoke")
    page.select_option("#revoke-form select[name=reason]", "key_compromise")
    submit_dialog(page, "revoke-form")
    expect(page.locator("dd[data-key=status]")).to_have_text("revoked")
    expect(page.locator("dd[data-key=revoked]")).to_contain_text("key_compromise")
    expect(page.locator("#revoke")).to_have_count(0)
    go(page, "certificates")
    page.fill("#cert-filters input[name=subject]", "browser-device")
    page.select_option("#cert-filters select[name=status]", "revoked")
    page.click("#cert-filters button[type=submit]")
    expect(page.locator("#cert-results tbody tr")).to_have_count(1)

    step("an access token that is gone is renewed with the refresh cookie, unnoticed")
    context.clear_cookies(name="__Host-shedu-session")
    go(page, "ras")
    expect(page.locator("#new-ra")).to_be_visible()
    assert "__Host-shedu-session" in {c["name"] for c in context.cookies()}, "the refresh set a new session"

    step("create an RA")
    go(page, "ras")
    page.click("#new-ra")
    page.fill("#ra-form input[name=name]", "browser-line-1")
    page.select_option("#ra-form select[name=ca]", label="browser-issuing")
    submit_dialog(page, "ra-form")
    expect(page.locator("#content table").first).to_contain_text("browser-line-1")
    shot(page, "ras")

    step("subscribe a webhook to device events (its receiver is not up yet: deliveries will fail)")
    hook_port = free_port()
    go(page, "alerts")
    page.click("#new-subscription")
    page.fill("#subscription-form input[name=event_types]", "device.*")
    page.fill("#subscription-form input[name=url]", "ftp://nowhere.example/")
    submit_dialog(page, "subscription-form")
    expect(page.locator("#subscription-form [role=alert]:not(:empty)").first).not_to_be_empty()
    page.fill("#subscription-form input[name=url]", f"http://127.0.0.1:{hook_port}/hook")
    submit_dialog(page, "subscription-form")
    expect(page.locator("#new-secret")).not_to_be_empty()
    page.click("#secret-done")
    expect(page.locator("#subscriptions")).to_contain_text(f"http://127.0.0.1:{hook_port}/hook")

    step("the live event stream shows what happened")
    go(page, "events")
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#event-list")).to_contain_text("certificate.revoked")
    expect(page.locator("#event-list")).to_contain_text("ra.created")

    step("a device enrols over EST (curl) and appears in the live views")
    ra_id = next(r["id"] for r in api("GET", "/api/v1/ras")["items"] if r["name"] == "browser-line-1")
    enrol("plc-9", ra_id)
    # Issued under the edited profile: 120 days (from notBefore, which is backdated 60 s).
    plc = api("GET", "/api/v1/certificates?subject=plc-9")["items"]
    assert len(plc) == 1, plc
    lasts = datetime.fromisoformat(plc[0]["not_after"]) - datetime.fromisoformat(plc[0]["not_before"])
    assert timedelta(days=120) <= lasts <= timedelta(days=120, seconds=120), lasts
    expect(page.locator("#event-list")).to_contain_text("device.enrolled")
    expect(page.locator("#event-list li").first).to_contain_text("plc-9")
    shot(page, "events")
    go(page, "devices")
    expect(page.locator("#content table").first).to_contain_text("plc-9")
    expect(page.locator("tr", has_text="plc-9")).to_contain_text("fully provisioned")
    page.click("#content a:has-text('plc-9')")
    expect(page.locator("dd[data-key=status]")).to_have_text("fully provisioned")
    expect(page.locator("#slots tbody tr").first).to_contain_text("active")
    shot(page, "device")

    step("the device's events are dead letters on the alerts page; one is retried once the receiver is up")
    go(page, "alerts")
    page.select_option("#delivery-filters select[name=status]", "dead")
    dead = page.locator("#deliveries tbody tr")
    until(page, lambda: dead.count() > 0, "a dead delivery", "#delivery-filters button[type=submit]")
    expect(dead.first).to_contain_text("dead")
    expect(dead.first.locator("small.error")).not_to_be_empty()
    shot(page, "alerts")
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", hook_port), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    event_id = dead.first.locator("td").first.inner_text().strip()
    dead.first.locator("button.retry").click()
    page.select_option("#delivery-filters select[name=status]", "delivered")
    delivered = page.locator("#deliveries tbody tr", has_text=event_id)
    until(page, lambda: delivered.count() == 1, "the retried delivery delivered", "#delivery-filters button[type=submit]")
    assert any(t and t.startswith("device.") for t, _ in Receiver.received), Receiver.received
    assert any(event_id.encode() in body for _, body in Receiver.received), "the retried event was sent"

    step("the later capabilities have their pages: an asset added over the API is listed")
    api("POST", "/api/v1/assets", {"system_name": "web-1", "common_name": "web-1.example", "ip_address": "192.0.2.10",
                                   "port": 8443})
    go(page, "rotation")
    expect(page.locator("#assets tbody tr", has_text="web-1")).to_contain_text("192.0.2.10:8443")
    expect(page.locator("#rotation-runs")).to_contain_text("No rotation run yet")
    go(page, "connectors")
    expect(page.locator("#cloud-connectors")).to_contain_text("No cloud connector yet")
    go(page, "kmip")
    expect(page.locator("#kmip-owned")).to_contain_text("You own no KMIP object")
    go(page, "secrets")
    expect(page.locator("#content")).to_contain_text("KV v2")

    step("the dashboard counts them")
    go(page, "dashboard")
    expect(page.locator(".card", has=page.locator("#stat-certificates"))).to_contain_text("revoked")
    expect(page.locator(".card", has=page.locator("#stat-cas"))).to_contain_text("active")
    # Nothing is due within 90 days (plc-9's certificate runs for the edited profile's 120 days).
    expect(page.locator("#expiring li")).to_have_count(3)
    expect(page.locator("#expiring")).to_contain_text("0 in the next 90 days")
    per_ca = page.locator("#per-ca tr", has_text="browser-issuing")
    expect(per_ca.locator("td").nth(4)).to_have_text("1")  # revoked

    step("the dashboard's charts: SVG drawn from the same counts")
    bars = page.locator("#chart-per-ca g.row[data-name='browser-issuing']")
    expect(bars.locator("rect[data-status=revoked]")).to_have_attribute("data-count", "1")
    expect(bars.locator("rect[data-status=active]")).to_have_attribute("data-count", "1")
    expect(bars.locator("text.total")).to_have_text("2")
    expect(page.locator("#chart-expiring g.window")).to_have_count(3)
    for days in ["7", "30", "90"]:
        expect(page.locator(f"#chart-expiring g.window[data-days='{days}']")).to_have_attribute("data-count", "0")
    expect(page.locator("#chart-devices rect[data-status=fully_provisioned]")).to_have_attribute("data-count", "1")
    shot(page, "dashboard")
    sign_out(page)
    assert "__Host-shedu-session" not in {c["name"] for c in context.cookies()}

    step("an auditor sees no write buttons")
    sign_in(page, auditor)
    go(page, "cas")
    expect(page.locator("#content table").first).to_contain_text("browser-issuing")
    expect(page.locator("#new-root")).to_have_count(0)
    expect(page.locator("#new-intermediate")).to_have_count(0)
    expect(page.locator("button[data-edit-profile]")).to_have_count(0)
    go(page, "certificates")
    expect(page.locator("#cert-results")).to_contain_text("browser-device.example")
    expect(page.locator("#issue")).to_have_count(0)
    page.click("#cert-results a:has-text('browser-device.example')")
    expect(page.locator("dd[data-key=status]")).to_have_text("revoked")
    expect(page.locator("#revoke")).to_have_count(0)
    go(page, "ras")
    expect(page.locator("#content table").first).to_contain_text("browser-line-1")
    expect(page.locator("#new-ra")).to_have_count(0)
    go(page, "devices")
    page.click("#content a:has-text('plc-9')")
    expect(page.locator("dd[data-key=status]")).to_have_text("fully provisioned")
    expect(page.locator("#decommission")).to_have_count(0)

    go(page, "alerts")
    expect(page.locator("#subscriptions")).to_contain_text(f"http://127.0.0.1:{hook_port}/hook")
    expect(page.locator("#deliveries tbody tr").first).to_be_visible()
    expect(page.locator("#new-subscription")).to_have_count(0)
    expect(page.locator(".delete-subscription")).to_have_count(0)
    page.select_option("#delivery-filters select[name=status]", "dead")
    page.click("#delivery-filters button[type=submit]")
    expect(page.locator("#deliveries tbody tr").first).to_contain_text("dead")
    expect(page.locator("button.retry")).to_have_count(0)

    go(page, "rotation")
    expect(page.locator("#assets")).to_contain_text("web-1")
    expect(page.locator("nav a[href='#/kmip']")).to_have_count(0)  # KMIP access is for admins and operators

    step("an auditor forcing a write from the page gets 403")
    forced = page.evaluate(
        """async () => {
            const res = await fetch('/api/v1/cas', {method: 'POST', credentials: 'same-origin',
              headers: {'Content-Type': 'application/json', 'X-Requested-With': 'shedu-console'},
              body: JSON.stringify({name: 'forced', key_type: 'ec-p256', subject: {common_name: 'F'}})});
            return [res.status, await res.json()];
        }"""
    )
    assert forced[0] == 403 and forced[1]["type"] == "urn:shedu:problem:forbidden", forced

    step("the auditor checks the audit chain")
    go(page, "audit")
    expect(page.locator("#content table").first).to_contain_text("certificate.revoke")
    page.click("#verify")
    expect(page.locator("#verdict")).to_contain_text("Chain intact")
    shot(page, "audit")

    step("an admin decommissions the device: its certificate is revoked")
    sign_out(page)
    sign_in(page, admin)
    go(page, "devices")
    page.click("#content a:has-text('plc-9')")
    page.click("#decommission")
    submit_dialog(page, "decommission-form")
    expect(page.locator("dd[data-key=status]")).to_have_text("decommissioned")
    expect(page.locator("#slots tbody tr").first).to_contain_text("revoked")
    expect(page.locator("#decommission")).to_have_count(0)

    step("on a tablet: the sidebar folds above the page and nothing scrolls sideways")
    page.set_viewport_size({"width": 768, "height": 1024})
    for name in ["dashboard", "certificates", "devices"]:
        go(page, name)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
    expect(page.locator("nav.sidebar")).to_be_visible()
    go(page, "cas")
    shot(page, "tablet")

    violations = [m for m in messages if "Content Security Policy" in m]
    assert not violations, f"Content-Security-Policy violations: {violations}"
    assert not errors, f"page errors: {errors}"
    browser.close()
    print(json.dumps({"serial": serial}))


# Not a `with` block: on a failure the browser stays open until the report (and screenshot) is done.
playwright = sync_playwright().start()
main(playwright)
playwright.stop()
