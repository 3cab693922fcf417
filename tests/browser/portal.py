#!/usr/bin/env python3
"""Drives the creators' page's transparency section in headless Chromium (Selenium).

    python3 tests/browser/portal.py PUBLIC_URL API_KEY DOMAIN SCREENSHOT.png --verified N --failed M

Run by tests/tlog.rs. Opens the page, enters the API key and the domain, shows the decisions and
checks that exactly N rows say "verified ✓" (the checkpoint's Ed25519 signature and each
record's inclusion proof checked by the page's own script with WebCrypto) and M rows say why
they failed; with M = 0 it also downloads the receipt and checks that it holds the N records.
Uses Debian's /usr/bin/chromium and /usr/bin/chromedriver. Exits 1 with the failing step.
"""

import argparse
import glob
import json
import os
import shutil
import sys
import time

import chrome
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 20


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def wait(driver, predicate, what):
    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(lambda d: predicate())
    except TimeoutException:
        raise Failure(f"timed out after {WAIT}s waiting for: {what}") from None


def proofs(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#history td.proof')].map(td => td.textContent)")


def run(driver, args, downloads):
    print("- open the page and show the domain's decisions", flush=True)
    driver.get(args.public_url)
    driver.find_element(By.ID, "api-key").send_keys(args.api_key)
    driver.find_element(By.ID, "history-domain").send_keys(args.domain)
    driver.find_element(By.CSS_SELECTOR, "#history-form button[type=submit]").click()
    total = args.verified + args.failed
    wait(driver, lambda: len(proofs(driver)) == total and driver.find_element(By.ID, "history-result").text,
         f"{total} rows and a summary")
    shown = proofs(driver)
    verified = [p for p in shown if p == "verified \u2713"]
    failed = [p for p in shown if p.startswith("\u2717")]
    check(len(verified) == args.verified and len(failed) == args.failed,
          f"expected {args.verified} verified and {args.failed} failed, the page shows {shown}")
    summary = driver.find_element(By.ID, "history-result").text
    check(summary.startswith(f"{args.verified} of {total} records verified"), f"summary: {summary!r}")
    driver.save_screenshot(args.screenshot)
    if args.failed == 0:
        print("- download the receipt", flush=True)
        driver.find_element(By.ID, "receipt-button").click()
        wait(driver, lambda: glob.glob(os.path.join(downloads, "*.json")), "the receipt download")
        with open(glob.glob(os.path.join(downloads, "*.json"))[0], encoding="utf-8") as f:
            receipt = json.load(f)
        check(receipt["format"] == "consentry-receipt/v1", f"format: {receipt.get('format')}")
        check(len(receipt["records"]) == args.verified, f"receipt records: {len(receipt['records'])}")
        if args.receipt_out:
            shutil.copy(glob.glob(os.path.join(downloads, "*.json"))[0], args.receipt_out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("public_url")
    parser.add_argument("api_key")
    parser.add_argument("domain")
    parser.add_argument("screenshot")
    parser.add_argument("--verified", type=int, required=True)
    parser.add_argument("--failed", type=int, required=True)
    parser.add_argument("--receipt-out", default="")
    args = parser.parse_args()
    if chrome.tools_missing():
        return 1
    started = time.monotonic()
    driver = profile = downloads = None
    try:
        driver, profile, downloads = chrome.start("1280,1000")
        run(driver, args, downloads)
    except Exception as e:  # noqa: BLE001 - every failure is reported with the page's state
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        if driver is not None:
            print("visible text:\n" + driver.find_element(By.TAG_NAME, "body").text[-3000:], file=sys.stderr)
            for entry in driver.get_log("browser"):
                print(f"console: {entry}", file=sys.stderr)
        return 1
    finally:
        if driver is not None:
            driver.quit()
        for directory in (profile, downloads):
            if directory:
                shutil.rmtree(directory, ignore_errors=True)
    print(f"portal: every check passed in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
