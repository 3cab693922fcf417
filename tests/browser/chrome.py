"""Headless Debian Chromium for the browser tests (Selenium): never downloads a browser."""

import os
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def tools_missing():
    """Prints what is missing and returns True when Chromium or its driver is absent."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            print(f"FAIL: {path} is missing: run tests/run.sh (installs chromium and chromium-driver)", file=sys.stderr)
            return True
    return False


def start(window_size):
    """Starts Chromium with a fresh profile and a downloads directory; returns (driver, profile, downloads).
    The caller quits the driver and removes both directories."""
    profile = tempfile.mkdtemp(prefix="consentry-chromium-")
    downloads = tempfile.mkdtemp(prefix="consentry-downloads-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-default-browser-check", f"--window-size={window_size}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": downloads, "download.prompt_for_download": False,
    })
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    return driver, profile, downloads
