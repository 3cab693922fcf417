#!/usr/bin/env python3
"""The soak: a steady crawl across 1,000 origins whose robots.txt files change underneath,
through the release binary with its default storage (SQLite, transparency log on).

    tests/stress/soak.py                       # 20 minutes at 300 req/s; table on stdout
    SOAK_MINUTES=2 SOAK_RATE=200 tests/stress/soak.py
    STRESS_BUILD=0 tests/stress/soak.py     # use target/release/consentry as it is

The origins are one nginx serving s0001.soak.test ... s1000.soak.test (each its own directory,
resolved by `upstream.resolve`); robots.txt is served with `Cache-Control: max-age=60`, so the
proxy refetches every origin's policy about once a minute. Every 20 s, 50 origins get a new
robots.txt (allow all / disallow /private/ / disallow everything), in rotation.

Each minute is one wrk run (16 connections, paced to SOAK_RATE); after it the script reads the
proxy's RSS, file descriptors, open connections, cache sizes and audit queue from /proc and
/metrics, and checks 20 random URLs by hand: each decision must match a robots.txt the origin
served within the cache lifetime. At the end every answered request must be in the audit log.
Exit status 1 when a check fails, the proxy dies, or RSS grows more than 25 % after minute 5.
"""

import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import log, ms  # noqa: E402

ORIGINS = int(os.environ.get("SOAK_ORIGINS", "1000"))
MINUTES = int(os.environ.get("SOAK_MINUTES", "20"))
RATE = int(os.environ.get("SOAK_RATE", "300"))
CONNECTIONS = 16
SEGMENT = int(os.environ.get("SOAK_SEGMENT_SECONDS", "60"))
CHANGE_EVERY = 20
CHANGE_BATCH = 50
ROBOTS_MAX_AGE = 60
ADMIN_TOKEN = "soak-admin-token-0123456789abcdef"

# The robots.txt variants an origin cycles through, and what each means for each page.
VARIANTS = {
    "open": "User-agent: *\nAllow: /\n",
    "private": "User-agent: *\nDisallow: /private/\n",
    "closed": "User-agent: *\nDisallow: /\n",
}
PAGES = ["/public/a.html", "/public/b.html", "/public/c.html", "/private/doc.html", "/noai.html"]


def expected(variant, path):
    """allow or block, for the default profile (ai-train), before response inspection."""
    if path == "/noai.html":
        return "block"  # <meta name="robots" content="noai"> withholds it whatever robots.txt says
    if variant == "closed" or (variant == "private" and path.startswith("/private/")):
        return "block"
    return "allow"


def host(i):
    return f"s{i:04d}.soak.test"


class Origins:
    """The origins' files on disk, and the history of each robots.txt."""

    def __init__(self, www, port):
        self.www, self.port = www, port
        self.history = {}  # host -> [(since, variant)]
        self.lock = threading.Lock()
        body = "<p>" + "lorem ipsum " * 300 + "</p>"
        for i in range(1, ORIGINS + 1):
            root = os.path.join(www, host(i))
            os.makedirs(os.path.join(root, "public"))
            os.makedirs(os.path.join(root, "private"))
            for page in PAGES:
                meta = '<meta name="robots" content="noai">' if page == "/noai.html" else ""
                with open(root + page, "w") as f:
                    f.write(f"<!doctype html><html><head><title>{host(i)}</title>{meta}</head><body>{body}</body></html>")
            self.set_robots(i, random.choice(list(VARIANTS)))
        self.next_change = 1

    def set_robots(self, i, variant):
        path = os.path.join(self.www, host(i), "robots.txt")
        with open(path + ".new", "w") as f:
            f.write(VARIANTS[variant])
        with self.lock:
            os.replace(path + ".new", path)
            self.history.setdefault(host(i), []).append((time.time(), variant))

    def change_batch(self):
        for _ in range(CHANGE_BATCH):
            i = self.next_change
            self.next_change = self.next_change % ORIGINS + 1
            current = self.history[host(i)][-1][1]
            self.set_robots(i, random.choice([v for v in VARIANTS if v != current]))

    def variants_since(self, name, since):
        """Variants served at some point after `since` (the one in force then included)."""
        with self.lock:
            history = self.history[name]
        live = [v for (t, v) in history if t >= since]
        before = [v for (t, v) in history if t < since]
        return set(live + before[-1:])

    def urls(self):
        return [f"http://{host(i)}:{self.port}{page}" for i in range(1, ORIGINS + 1) for page in PAGES]


def changer(origins, stop):
    while not stop.wait(CHANGE_EVERY):
        origins.change_batch()


def spot_check(proxy, origins, count=20):
    """Fetches random URLs one by one; returns (checked, mismatches)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://{proxy.proxy}"}))
    mismatches = []
    for _ in range(count):
        i = random.randint(1, ORIGINS)
        page = random.choice(PAGES)
        asked = time.time()
        try:
            with opener.open(f"http://{host(i)}:{origins.port}{page}", timeout=30) as r:
                decision = r.headers.get("Consentry-Decision")
        except urllib.error.HTTPError as e:
            decision = e.headers.get("Consentry-Decision")
        # The proxy may use a copy fetched up to max-age ago (plus a fetch's duration).
        allowed = {expected(v, page) for v in origins.variants_since(host(i), asked - ROBOTS_MAX_AGE - 5)}
        if decision not in allowed:
            mismatches.append(f"{host(i)}{page}: {decision}, expected one of {sorted(allowed)}")
    return count, mismatches


def audit_total(proxy):
    request = urllib.request.Request(f"http://{proxy.admin}/api/stats",
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.load(r)["total"]


def main():
    harness.require("nginx", "wrk")
    harness.build_release()
    random.seed(int(os.environ.get("SOAK_SEED", "9309")))
    work = harness.workdir("soak")
    www = os.path.join(work, "www")
    os.makedirs(www)
    extra = f"location = /robots.txt {{ add_header Cache-Control \"max-age={ROBOTS_MAX_AGE}\"; }}"
    port = harness.start_nginx(work, os.path.join(www, "$host"), extra_server=extra)
    origins = Origins(www, port)
    resolve = "\n".join(f'"{host(i)}:{port}" = "127.0.0.1:{port}"' for i in range(1, ORIGINS + 1))
    proxy = harness.Proxy(work, harness.loopback_config(work, ADMIN_TOKEN, f"[upstream.resolve]\n{resolve}\n"))
    urls = origins.urls()
    stop = threading.Event()
    threading.Thread(target=changer, args=(origins, stop), daemon=True).start()
    delay_ms = max(1, int(CONNECTIONS * 1000 / RATE))
    rows, failures = [], []
    answered = 0
    checks_done = 0
    log(f"soak: {ORIGINS} origins, {MINUTES} × {SEGMENT} s at about {RATE} req/s")
    prev_fetches = 0.0
    for minute in range(1, MINUTES + 1):
        result = harness.wrk(proxy.proxy, urls, SEGMENT, connections=CONNECTIONS, delay_ms=delay_ms, work=work,
                             timeout_s=30)
        answered += result["requests"]
        checked, mismatches = spot_check(proxy, origins)
        checks_done += checked
        answered += checked
        failures += [f"minute {minute}: {m}" for m in mismatches]
        if not proxy.alive():
            failures.append(f"minute {minute}: the proxy died")
            break
        m = proxy.metrics()
        fetches = sum(v for k, v in m.items() if k.startswith("consentry_policy_fetches_total"))

        def cache(name):
            return int(m.get(f'consentry_cache_entries{{cache="{name}"}}', 0))

        row = {
            "minute": minute, "rps": result["rps"], "p50": result["p50_us"], "p99": result["p99_us"],
            "max": result["max_us"], "blocked": result["status"] / max(result["requests"], 1),
            "errors": result["errors"], "rss": proxy.rss_kib() / 1024, "fds": proxy.fds(),
            "conns": int(m.get("consentry_client_connections", 0)),
            "robots": cache("robots.txt"), "robots_kib": m.get('consentry_cache_bytes{cache="robots.txt"}', 0) / 1024,
            "ai_txt": cache("ai.txt"), "tdmrep": cache("tdmrep.json"), "delay": cache("crawl_delay"),
            "queue": int(m.get("consentry_audit_queue_depth", 0)), "fetches": fetches - prev_fetches,
            "cpu": proxy.cpu_seconds(), "mismatches": len(mismatches),
        }
        prev_fetches = fetches
        rows.append(row)
        if result["errors"]:
            failures.append(f"minute {minute}: {result['errors']} socket errors or timeouts")
        log(f"minute {minute}: {row['rps']:.0f} req/s, p99 {ms(row['p99'])} ms, RSS {row['rss']:.1f} MiB, "
            f"fds {row['fds']}, robots cache {row['robots']}, fetches {row['fetches']:.0f}, "
            f"checks {checked - len(mismatches)}/{checked}")
    stop.set()

    # Nothing lost: every answered request has its record (a few more may have been cut by wrk
    # stopping mid-request: the proxy records those too).
    deadline = time.time() + 60
    while proxy.metrics().get("consentry_audit_queue_depth", 0) > 0 and time.time() < deadline:
        time.sleep(0.2)
    recorded = audit_total(proxy)
    cut_allowance = CONNECTIONS * len(rows) + 5
    if not answered <= recorded <= answered + cut_allowance:
        failures.append(f"audit log holds {recorded} records for {answered} answered requests")
    panics = open(proxy.stderr.name).read().count("panicked")
    if panics:
        failures.append(f"{panics} panics in the proxy's log")
    if len(rows) >= 6:
        settled = rows[4]["rss"]
        growth = (rows[-1]["rss"] - settled) / settled
        if growth > 0.25:
            failures.append(f"RSS grew {growth:.0%} from minute 5 to the end")

    print(f"\nSoak: {ORIGINS} origins, {len(rows)} min, target {RATE} req/s, {CONNECTIONS} connections; "
          f"{answered} requests answered, {recorded} audit records; {checks_done} spot checks")
    print("\n| min | req/s | p50 ms | p99 ms | max ms | blocked | errors | RSS MiB | fds | conns | "
          "robots cache (weight KiB) | ai.txt | tdmrep | policy fetches | audit queue | CPU s | spot-check misses |")
    print("|" + "---|" * 17)
    for r in rows:
        print(f"| {r['minute']} | {r['rps']:.0f} | {ms(r['p50'])} | {ms(r['p99'])} | {ms(r['max'])} | "
              f"{r['blocked']:.0%} | {r['errors']} | {r['rss']:.1f} | {r['fds']} | {r['conns']} | "
              f"{r['robots']} ({r['robots_kib']:.0f}) | {r['ai_txt']} | {r['tdmrep']} | {r['fetches']:.0f} | "
              f"{r['queue']} | {r['cpu']:.0f} | {r['mismatches']} |")
    if failures:
        print("\nFAILED:\n" + "\n".join(failures[:50]))
        sys.exit(1)
    print("\nall checks held")


if __name__ == "__main__":
    main()
