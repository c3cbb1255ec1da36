"""Signs in to the shedu web console through an OpenID Connect provider's login page, in Debian's Chromium
driven by Playwright (never a downloaded browser).

Run by crates/server/tests/console_browser.rs (console_signs_in_through_oidc):
    oidc.py BASE_URL ISSUER
The provider (tests/console/idp.py) knows olivia (operator), ada (auditor) and nobody (no shedu role).
Prints one line per step; any failed expectation raises, and the test fails with the output.
"""

import base64
import hashlib
import os
import re
import json
import sys
import urllib.request
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect, sync_playwright

base, issuer = sys.argv[1:3]
CHROMIUM = os.environ.get("SHEDU_CHROMIUM", "/usr/bin/chromium")
LABEL = "Sign in with the test IdP"


def step(text):
    print(f"step: {text}", flush=True)


def main(p):
    browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1360, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15000)
    messages, errors, authorize = [], [], []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: authorize.append(r.url) if r.url.startswith(f"{issuer}/oauth2/authorize") else None)
    sys.excepthook = lambda *exc: (print("browser console:", *messages, "page errors:", *errors, sep="\n",
                                         file=sys.stderr), sys.__excepthook__(*exc))

    def cookies():
        return {c["name"]: c for c in context.cookies()}

    def to_provider():
        page.goto(f"{base}/")
        page.click(f"#oidc-providers a:has-text('{LABEL}')")
        expect(page).to_have_url(re.compile("^" + re.escape(f"{issuer}/oauth2/authorize")))

    def sign_in_as(sub):
        to_provider()
        page.fill("input[name=sub]", sub)
        page.click("button:has-text('Authorize')")

    step("the sign-in page offers the provider; it sends the browser there with PKCE (S256), state and nonce")
    to_provider()
    query = {k: v[0] for k, v in parse_qs(urlparse(authorize[-1]).query).items()}
    pending = cookies()["__Host-shedu-oidc"]
    assert pending["httpOnly"] and pending["secure"] and pending["sameSite"] == "Lax", pending
    _, state, nonce, verifier = pending["value"].split(".")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert query["response_type"] == "code" and query["client_id"] == "shedu-console", query
    assert query["code_challenge_method"] == "S256" and query["code_challenge"] == challenge, query
    assert query["state"] == state and query["nonce"] == nonce, query
    assert query["redirect_uri"] == f"{base}/ui/oidc/callback", query
    assert len(verifier) >= 43, "RFC 7636: a verifier of 43 to 128 characters"

    step("olivia signs in on the provider's login page and is an operator in the console")
    page.fill("input[name=sub]", "olivia")
    page.click("button:has-text('Authorize')")
    expect(page.locator(".whoami .who")).to_have_text("olivia")
    expect(page.locator(".whoami .role")).to_have_text("operator")
    jar = cookies()
    assert "__Host-shedu-oidc" not in jar, "the pending sign-in is cleared"
    session = jar["__Host-shedu-session"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict", session
    assert page.evaluate("document.cookie") == ""
    expect(page.locator("nav a[href='#/audit']")).to_have_count(0)

    step("the operator creates a root CA from the console")
    page.click("nav a[href='#/cas']")
    page.click("#new-root")
    page.fill("#ca-form input[name=name]", "oidc-root")
    page.fill("#ca-form input[name=cn]", "OIDC Root CA")
    page.click("#ca-form button[type=submit]")
    expect(page.locator("#content table").first).to_contain_text("oidc-root")

    step("the login outlives the ID token: the server renews the session with the provider's refresh token")
    refresh = cookies()["__Secure-shedu-refresh"]
    assert refresh["httpOnly"] and refresh["secure"] and refresh["path"] == "/ui/session", refresh
    assert refresh["value"].startswith("shr_"), "the browser holds the console's own refresh token only"
    id_token = cookies()["__Host-shedu-session"]["value"]
    context.clear_cookies(name="__Host-shedu-session")
    page.click("nav a[href='#/certificates']")
    page.click("nav a[href='#/cas']")
    expect(page.locator("#content table").first).to_contain_text("oidc-root")
    expect(page.locator(".whoami .role")).to_have_text("operator")
    renewed = cookies()["__Host-shedu-session"]["value"]
    claims = json.loads(base64.urlsafe_b64decode(renewed.split(".")[1] + "=="))
    assert renewed != id_token and claims["iss"] == "shedu" and claims["name"] == "olivia", claims
    assert claims["role"] == "operator" and claims["sub"] == f"oidc:{issuer}#olivia", claims

    step("the provider ends the login: the next renewal is refused and the console asks to sign in again")
    urllib.request.urlopen(urllib.request.Request(f"{issuer}/users/olivia/revoke-tokens", method="POST"))
    context.clear_cookies(name="__Host-shedu-session")
    page.click("nav a[href='#/dashboard']")
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator(".login-card")).to_contain_text("Your session ended")
    ended = page.evaluate(
        """async () => (await fetch('/ui/session/refresh', {method: 'POST', credentials: 'same-origin',
            headers: {'X-Requested-With': 'shedu-console'}})).status"""
    )
    assert ended == 401, f"the login is over on the server too: {ended}"

    step("olivia signs in again and signs out")
    sign_in_as("olivia")
    expect(page.locator(".whoami .who")).to_have_text("olivia")
    page.click("#sign-out")
    expect(page.locator("#login-form")).to_be_visible()
    assert "__Host-shedu-session" not in cookies()

    step("a sign-in denied at the provider comes back with its reason")
    to_provider()
    page.click("button:has-text('Deny')")
    expect(page.locator(".login-card .error")).to_contain_text("did not sign you in")
    assert "oidc-error" not in page.url, page.url

    step("a provider user without a shedu role is not signed in")
    sign_in_as("nobody")
    expect(page.locator(".login-card .error")).to_contain_text("not accepted")
    assert "__Host-shedu-session" not in cookies()

    step("a callback that this browser did not start (forged state) is refused")
    to_provider()
    page.goto(f"{base}/ui/oidc/callback?code=forged&state=forged")
    expect(page.locator(".login-card .error")).to_contain_text("did not start here")
    assert "__Host-shedu-session" not in cookies()

    step("ada, an auditor at the provider, sees no write buttons and gets 403 when forcing one")
    sign_in_as("ada")
    expect(page.locator(".whoami .role")).to_have_text("auditor")
    page.click("nav a[href='#/cas']")
    expect(page.locator("#content table").first).to_contain_text("oidc-root")
    expect(page.locator("#new-root")).to_have_count(0)
    expect(page.locator("#new-intermediate")).to_have_count(0)
    forced = page.evaluate(
        """async () => {
            const res = await fetch('/api/v1/cas', {method: 'POST', credentials: 'same-origin',
              headers: {'Content-Type': 'application/json', 'X-Requested-With': 'shedu-console'},
              body: JSON.stringify({name: 'forced', key_type: 'ec-p256', subject: {common_name: 'F'}})});
            return [res.status, await res.json()];
        }"""
    )
    assert forced[0] == 403 and forced[1]["type"] == "urn:shedu:problem:forbidden", forced
    page.click("nav a[href='#/audit']")
    expect(page.locator("#content table").first).to_contain_text("ca.create")

    violations = [m for m in messages if "Content Security Policy" in m]
    assert not violations, f"Content-Security-Policy violations: {violations}"
    assert not errors, f"page errors: {errors}"
    browser.close()


playwright = sync_playwright().start()
main(playwright)
playwright.stop()
