#!/usr/bin/env python3
"""Drives the Consentry operator dashboard in headless Chromium (Selenium).

    python3 tests/browser/dashboard.py ADMIN_URL TOKEN SCREENSHOT.png [--robots-sha256 HEX]

Run by tests/dashboard.rs after it made these decisions through the proxy (oldest first), all
against one origin that answers both as 127.0.0.1 and as docs.test, whose robots.txt is
"User-agent: *\\nDisallow: /private\\nDisallow: /x<b id=pwn>\\n":

    allow        default  127.0.0.1  /hello
    block        default  127.0.0.1  /private/a
    allow        default  docs.test  /public/page
    block        default  127.0.0.1  /private/b
    would-block  watcher  127.0.0.1  /private/watched      (crawler in monitor mode)
    block        default  127.0.0.1  /x%3Cb%20id=pwn%3E    (rule text carries markup)
    block        default  docs.test  /private/c

Uses Debian's /usr/bin/chromium and /usr/bin/chromedriver (never downloads a browser). Asserts
on the DOM, not on pixels; writes SCREENSHOT (the list view) and SCREENSHOT-decision.png next to
it. Exits 1 with the failing step on any failure.
"""

import argparse
import os
import shutil
import sys
import time
import traceback

import chrome
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

WAIT = 20


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def tid(name):
    return (By.CSS_SELECTOR, f'[data-testid="{name}"]')


class Dashboard:
    def __init__(self, driver, base):
        self.d = driver
        self.base = base

    def wait(self, predicate, what, timeout=WAIT):
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1).until(lambda d: predicate())
        except TimeoutException:
            raise Failure(f"timed out after {timeout}s waiting for: {what}") from None

    def one(self, name):
        return self.d.find_element(*tid(name))

    def all(self, name, within=None):
        return (within or self.d).find_elements(*tid(name))

    def visible(self, name):
        found = self.all(name)
        return bool(found) and found[0].is_displayed()

    def rows(self):
        """The table rows as dicts, read in one script call (no stale elements)."""
        return self.d.execute_script(
            """return [...document.querySelectorAll('[data-testid="decision-row"]')].map(tr => ({
                 id: tr.dataset.requestId, host: tr.dataset.host, decision: tr.dataset.decision,
                 url: tr.querySelector('[data-testid="cell-url"]').title,
                 reason: tr.querySelector('[data-testid="cell-reason"]').textContent,
                 crawler: tr.children[3].textContent, status: tr.children[2].textContent }))"""
        )

    def wait_rows(self, predicate, what):
        last = []

        def ready():
            nonlocal last
            last = self.rows()
            return predicate(last)

        try:
            self.wait(ready, what)
            return last
        except Failure as e:
            raise Failure(f"{e}; rows shown: {[(r['decision'], r['host'], r['url']) for r in last]}") from None

    def text(self, name):
        return self.one(name).text


def step(title):
    print(f"- {title}", flush=True)


def run(dash, token, screenshot, robots_sha256, downloads):
    d = dash.d
    base = dash.base

    step("open the page: the login form shows")
    d.get(base)
    dash.wait(lambda: dash.visible("login-view"), "the login form")
    check(not d.find_element(By.ID, "app").is_displayed(), "the app is hidden before login")
    label = d.find_element(By.CSS_SELECTOR, 'label[for="token"]')
    check("token" in label.text.lower(), f"the token field has a label: {label.text!r}")

    step("a wrong token is refused with a clear message")
    field = dash.one("token-input")
    field.send_keys("not-the-token")
    dash.one("login-submit").click()
    dash.wait(lambda: dash.visible("login-error") and "401" in dash.text("login-error"), "the 401 message")
    check("not accepted" in dash.text("login-error"), f"login error: {dash.text('login-error')!r}")
    check(not d.find_element(By.ID, "app").is_displayed(), "the app stays hidden after a wrong token")
    check(d.execute_script("return sessionStorage.length") == 0, "a wrong token is not stored")

    step("the right token opens the blocked-requests view, newest first")
    field = dash.one("token-input")
    field.clear()
    field.send_keys(token)
    dash.one("login-submit").click()
    rows = dash.wait_rows(lambda r: len(r) == 4, "the 4 blocked requests")
    urls = [r["url"] for r in rows]
    check(all(r["decision"] == "block" for r in rows), f"only blocks by default: {rows}")
    check(urls[0].endswith("/private/c") and "docs.test" in urls[0], f"newest first: {urls}")
    check(urls[1].endswith("/x%3Cb%20id=pwn%3E"), f"order: {urls}")
    check(urls[2].endswith("/private/b") and urls[3].endswith("/private/a"), f"order: {urls}")
    check({r["host"] for r in rows} == {"127.0.0.1", "docs.test"}, f"hosts: {rows}")
    check(rows[0]["reason"] == "robots: Disallow: /private", f"first reason: {rows[0]['reason']!r}")
    check(rows[0]["status"] == "451" and rows[0]["crawler"] == "default", f"row: {rows[0]}")
    check(d.execute_script("return sessionStorage.getItem('consentry.adminToken')") == token, "token in sessionStorage")
    check("verdict=block" in d.current_url, f"filters in the hash: {d.current_url}")
    check(dash.text("list-title") == "Blocked requests", f"title: {dash.text('list-title')!r}")
    check(not d.find_elements(By.ID, "pwn"), "markup from a URL is never rendered as HTML")

    step("totals and charts (inline SVG)")
    dash.wait(lambda: dash.text("total-block") == "4", "4 blocked in the totals")
    totals = {k: dash.text(f"total-{k}") for k in ("all", "block", "would-block", "allow")}
    check(totals == {"all": "7", "block": "4", "would-block": "1", "allow": "2"}, f"totals: {totals}")
    bars = d.find_elements(By.CSS_SELECTOR, '[data-testid="svg-over-time"] [data-testid="bar-over-time"]')
    check(bars, "the blocks-over-time chart has bars")
    stacked = d.find_elements(By.CSS_SELECTOR, '[data-testid="svg-over-time"] [data-source="robots"]')
    check(stacked, "the blocks-over-time bars are stacked by source (robots)")
    legend = d.find_elements(By.CSS_SELECTOR, '[data-testid="legend-over-time"]')
    check(legend and "robots" in legend[0].text, "the blocks-over-time chart has a legend of sources")
    heights = [float(b.get_attribute("height")) for b in bars]
    check(any(h > 0 for h in heights), f"some bar is not empty: {heights}")
    svg_tag = d.execute_script("return document.querySelector('[data-testid=\"svg-over-time\"]').namespaceURI")
    check(svg_tag == "http://www.w3.org/2000/svg", f"a real SVG: {svg_tag}")
    for key, expected in (("host", {"127.0.0.1", "docs.test"}), ("crawler", {"default"}), ("source", {"robots"})):
        names = {g.get_attribute("data-name") for g in dash.all(f"hbar-{key}", d.find_element(*tid(f"svg-{key}")))}
        check(names == expected, f"{key} chart bars: {names}, expected {expected}")
    counts = {g.get_attribute("data-name"): g.text for g in dash.all("hbar-host")}
    check("3" in counts.get("127.0.0.1", ""), f"host chart counts: {counts}")

    step("filter by host")
    host = dash.one("filter-host")
    host.send_keys("docs.test", Keys.ENTER)
    rows = dash.wait_rows(lambda r: len(r) == 1 and r[0]["host"] == "docs.test", "only docs.test rows")
    check(rows[0]["url"].endswith("/private/c"), f"docs.test block: {rows}")
    check("host=docs.test" in d.current_url, f"host in the hash: {d.current_url}")

    step("filter by verdict: allowed, then all")
    Select(dash.one("filter-verdict")).select_by_value("allow")
    rows = dash.wait_rows(lambda r: len(r) == 1 and r[0]["decision"] == "allow", "the allowed docs.test request")
    check(rows[0]["url"].endswith("/public/page") and rows[0]["status"] == "200", f"allowed row: {rows}")
    check(dash.text("list-title") == "Allowed requests", f"title: {dash.text('list-title')!r}")
    Select(dash.one("filter-verdict")).select_by_value("all")
    rows = dash.wait_rows(lambda r: len(r) == 2, "both docs.test decisions")
    check([r["decision"] for r in rows] == ["block", "allow"], f"all verdicts, newest first: {rows}")

    step("would-block (monitor mode) for every host")
    host = dash.one("filter-host")
    host.clear()
    host.send_keys(Keys.ENTER)
    Select(dash.one("filter-verdict")).select_by_value("would-block")
    rows = dash.wait_rows(
        lambda r: len(r) == 1 and r[0]["decision"] == "would-block", "the would-block request of the watcher"
    )
    check(rows[0]["crawler"] == "watcher" and rows[0]["url"].endswith("/private/watched"), f"would-block: {rows}")

    step("a shared link with filters reloads the same view")
    d.get(base + "#verdict=block&since=24h&host=127.0.0.1")
    d.refresh()
    rows = dash.wait_rows(
        lambda r: len(r) == 3 and all(x["host"] == "127.0.0.1" and x["decision"] == "block" for x in r),
        "the 3 blocks on 127.0.0.1 after a reload",
    )
    check(dash.one("filter-host").get_attribute("value") == "127.0.0.1", "the host field shows the hash's filter")
    check(Select(dash.one("filter-verdict")).first_selected_option.get_attribute("value") == "block", "verdict")

    step("load more pages with the cursor")
    d.get(base + "#verdict=block&since=24h&limit=3")
    d.refresh()
    first = dash.wait_rows(lambda r: len(r) == 3, "the first page of 3 rows")
    dash.wait(lambda: dash.visible("load-more"), "the load-more button")
    dash.one("load-more").click()
    rows = dash.wait_rows(lambda r: len(r) == 4, "the second page appended")
    check([r["id"] for r in rows[:3]] == [r["id"] for r in first], "the first page stays in place")
    check(rows[3]["url"].endswith("/private/a"), f"the oldest block comes last: {rows[3]}")
    dash.wait(lambda: not dash.visible("load-more") and "End" in dash.text("list-end"), "the end of the list")

    d.get(base + "#verdict=block&since=24h&host=127.0.0.1")
    d.refresh()
    dash.wait_rows(lambda r: len(r) == 3, "the 3 blocks on 127.0.0.1 again")

    step("export CSV and JSON Lines for the current filter")
    for fmt, first in (("csv", "request_id,"), ("jsonl", "{")):
        target = os.path.join(downloads, f"consentry-decisions.{fmt}")
        dash.one(f"export-{fmt}").click()
        dash.wait(lambda: os.path.exists(target) and os.path.getsize(target) > 0, f"the {fmt} download")
        with open(target, encoding="utf-8") as f:
            lines = f.read().splitlines()
        check(lines and lines[0].startswith(first), f"{fmt} content: {lines[:2]}")
        data = [line for line in lines if line and not line.startswith("request_id,")]
        check(len(data) == 3, f"{fmt}: the 3 filtered rows, got {len(data)}")
        check(all("docs.test" not in line for line in data), f"{fmt}: the host filter applies")

    # The screenshot of the list view: all verdicts, every host.
    Select(dash.one("filter-verdict")).select_by_value("all")
    host = dash.one("filter-host")
    host.clear()
    host.send_keys(Keys.ENTER)
    dash.wait_rows(lambda r: len(r) == 7, "all 7 decisions")
    d.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    check(d.save_screenshot(screenshot), "list screenshot saved")

    step("open a decision: every reason with rule, line, evidence and sha256")
    Select(dash.one("filter-verdict")).select_by_value("block")
    rows = dash.wait_rows(lambda r: len(r) == 4, "the 4 blocks again")
    target = next(r for r in rows if r["url"].endswith("/private/a"))
    row = d.find_element(By.CSS_SELECTOR, f'[data-request-id="{target["id"]}"] td.url')
    row.click()
    dash.wait(lambda: dash.visible("decision-view") and dash.all("reason"), "the decision page")
    check(not dash.visible("list-view"), "the list is hidden on the decision page")
    check(f"decision={target['id']}" in d.current_url, f"deep link in the hash: {d.current_url}")
    check_decision(dash, target["id"], "/private/a", "Disallow: /private", "2", robots_sha256)
    base_png, ext = os.path.splitext(screenshot)
    check(d.save_screenshot(f"{base_png}-decision{ext}"), "decision screenshot saved")

    step("back to the list keeps the filters")
    dash.one("back-to-list").click()
    dash.wait(lambda: dash.visible("list-view") and len(dash.rows()) == 4, "the list again")
    check("verdict=block" in d.current_url and "decision=" not in d.current_url, f"hash: {d.current_url}")

    step("a decision is deep-linkable; markup in a rule is text")
    pwn = next(r for r in rows if "pwn" in r["url"])
    d.get(base + "#decision=" + pwn["id"])
    d.refresh()
    dash.wait(lambda: dash.visible("decision-view") and dash.all("reason"), "the deep-linked decision")
    check_decision(dash, pwn["id"], "/x%3Cb%20id=pwn%3E", "Disallow: /x<b id=pwn>", "3", robots_sha256)
    check(not d.find_elements(By.ID, "pwn"), "a rule's markup is never rendered as HTML")

    step("a rejected token mid-session returns to the login with a message")
    d.execute_script("sessionStorage.setItem('consentry.adminToken', 'revoked')")
    dash.one("back-to-list").click()
    dash.wait(lambda: dash.visible("login-view") and "401" in dash.text("login-error"), "the login after a 401")
    check(d.execute_script("return sessionStorage.getItem('consentry.adminToken')") is None, "the bad token is dropped")

    step("log in again, then log out")
    dash.one("token-input").send_keys(token, Keys.ENTER)
    dash.wait_rows(lambda r: len(r) == 4, "the list after logging in again")
    dash.one("logout").click()
    dash.wait(lambda: dash.visible("login-view"), "the login after logging out")
    check(d.execute_script("return sessionStorage.getItem('consentry.adminToken')") is None, "logout forgets the token")
    check(not dash.rows(), "logout clears the table")

    logs = [e for e in d.get_log("browser") if e.get("level") == "SEVERE" and "401" not in e.get("message", "")]
    check(not logs, f"no errors in the browser console: {logs}")


def check_decision(dash, request_id, path, rule, line, robots_sha256):
    d = dash.d
    fields = dash.one("decision-fields").text
    check(request_id in dash.text("field-request_id"), f"request id shown: {fields}")
    check(dash.text("field-decision") == "block" and dash.text("field-status") == "451", f"fields: {fields}")
    check(dash.text("field-url").endswith(path), f"url: {dash.text('field-url')!r}")
    for name in ("time", "verdict", "stage", "mode", "method", "host", "crawler", "purposes", "node", "bytes",
                 "duration"):
        check(dash.all(f"field-{name}"), f"the {name} field is shown")
    reasons = dash.all("reason")
    found = []
    for reason in reasons:
        get = lambda name: reason.find_element(*tid(name)).text  # noqa: E731
        found.append((get("reason-source"), get("reason-effect"), get("reason-rule"), get("reason-line")))
    match = [r for r in reasons if r.find_element(*tid("reason-rule")).text == rule]
    check(match, f"a reason with rule {rule!r}; reasons: {found}")
    reason = match[0]
    get = lambda name: reason.find_element(*tid(name)).text  # noqa: E731
    check(get("reason-source") == "robots" and get("reason-effect") == "disallow", f"reason: {found}")
    check(get("reason-line") == line, f"line {line}: {get('reason-line')!r}")
    check(get("reason-purpose"), "the purpose is shown")
    check("token Consentry" in get("reason-detail"), f"detail: {get('reason-detail')!r}")
    link = reason.find_element(*tid("reason-evidence"))
    check(link.tag_name == "a" and link.get_attribute("href").endswith("/robots.txt"), f"evidence link: {link.text}")
    sha = get("reason-sha256")
    check(len(sha) == 64 and all(c in "0123456789abcdef" for c in sha), f"a sha256: {sha!r}")
    if robots_sha256:
        check(sha == robots_sha256, f"the sha256 of the robots.txt served: {sha} != {robots_sha256}")
    font = reason.find_element(*tid("reason-sha256")).value_of_css_property("font-family")
    check("mono" in font.lower() or "menlo" in font.lower() or "consolas" in font.lower(), f"monospace: {font}")
    check(dash.all("evidence-list"), "the evidence documents are listed")
    check(dash.all("copy"), "copy buttons")
    raw = d.find_element(*tid("raw-json")).get_attribute("textContent")
    check(request_id in raw, "the raw record is on the page")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("admin_url")
    parser.add_argument("token")
    parser.add_argument("screenshot")
    parser.add_argument("--robots-sha256", default="")
    args = parser.parse_args()

    if chrome.tools_missing():
        return 1
    started = time.monotonic()
    driver = profile = downloads = None
    try:
        driver, profile, downloads = chrome.start("1440,1000")
        base = args.admin_url if args.admin_url.endswith("/") else args.admin_url + "/"
        run(Dashboard(driver, base), args.token, args.screenshot, args.robots_sha256, downloads)
    except Exception as e:  # noqa: BLE001 - every failure is reported with the page's state
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        if not isinstance(e, Failure):
            traceback.print_exc()
        if driver is not None:
            try:
                print(f"page: {driver.current_url}", file=sys.stderr)
                body = driver.find_element(By.TAG_NAME, "body").text
                print("visible text:\n" + body[:3000], file=sys.stderr)
                for entry in driver.get_log("browser"):
                    print(f"console: {entry}", file=sys.stderr)
                base_png, ext = os.path.splitext(args.screenshot)
                driver.save_screenshot(f"{base_png}-failure{ext}")
            except WebDriverException:
                pass
        return 1
    finally:
        if driver is not None:
            driver.quit()
        for directory in (profile, downloads):
            if directory:
                shutil.rmtree(directory, ignore_errors=True)
    print(f"dashboard: every check passed in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
