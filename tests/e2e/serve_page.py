#!/usr/bin/python3
"""The drawing page of `scratchnet serve` in a real browser (headless Chromium via Selenium).

Trains `basic` briefly on real MNIST, serves it on a free loopback port, draws digits on the
page's canvas with pointer strokes, and checks the prediction and the probability bars the
page shows. A screenshot of the last digit is saved as SCREENSHOT.

    tests/e2e/serve_page.py path/to/scratchnet DATA_DIR SCREENSHOT

Exits 77 (skipped) when Chromium, ChromeDriver, Selenium or MNIST are missing.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

SKIP = 77

# Strokes on the 280x280 pad, as lists of (x, y) points, and the digit each draws.
DIGITS = [
    ("1", [[(150, 40), (145, 140), (140, 240)]]),
    ("7", [[(70, 50), (140, 50), (210, 50), (180, 120), (150, 180), (125, 245)]]),
    ("0", [[(140, 40), (200, 70), (215, 140), (200, 210), (140, 240), (80, 210), (65, 140),
            (80, 70), (140, 40)]]),
    ("4", [[(90, 40), (75, 150), (210, 150)], [(170, 60), (170, 250)]]),
]


def fail(message):
    print(f"FAIL {message}")
    sys.exit(1)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    binary, data, screenshot = sys.argv[1:]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
    except ImportError:
        print("skipped: python3-selenium is not installed (scripts/install-deps.sh)")
        sys.exit(SKIP)
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        print("skipped: chromium or chromedriver is not installed (scripts/install-deps.sh)")
        sys.exit(SKIP)
    if not os.path.exists(os.path.join(data, "mnist", "train-images-idx3-ubyte")):
        print(f"skipped: MNIST is not in {data}/mnist (scripts/fetch-data.sh)")
        sys.exit(SKIP)

    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        subprocess.run([binary, "train", "--model", "basic", "--data-dir", data, "--epochs", "1",
                        "--limit-train", "20000", "--limit-test", "1000", "--seed", "1",
                        "--quiet", "--out", run], check=True, stdout=subprocess.DEVNULL)
        server = subprocess.Popen([binary, "serve", os.path.join(run, "model.safetensors"),
                                   "--port", "0"], stdout=subprocess.PIPE, text=True)
        try:
            line = server.stdout.readline()
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            if not match:
                fail(f"serve printed {line!r}, expected its address")
            check_page(webdriver, Service, ActionChains, By, chromium, driver_path,
                       f"http://127.0.0.1:{match.group(1)}/", screenshot)
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"ok: {len(DIGITS)} digits drawn and read; screenshot {screenshot}")


def check_page(webdriver, Service, ActionChains, By, chromium, driver_path, url, screenshot):
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=900,820"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        browser.get(url)
        status = browser.find_element(By.ID, "status")
        wait_for(lambda: status.text == "ready", "the page to load the model")
        bars = browser.find_elements(By.CSS_SELECTOR, "#bars .bar")
        if len(bars) != 10:
            fail(f"the page shows {len(bars)} probability bars, expected 10")
        pad = browser.find_element(By.ID, "pad")
        prediction = browser.find_element(By.ID, "prediction")
        for digit, strokes in DIGITS:
            browser.find_element(By.ID, "clear").click()
            before = int(prediction.get_attribute("data-requests"))
            draw(ActionChains(browser), pad, strokes)
            settle(prediction, before)
            shown = prediction.text
            best = browser.find_elements(By.CSS_SELECTOR, "#bars .bar.best .name")
            percent = browser.find_element(By.ID, "confidence").text
            print(f"drew {digit}: the page shows {shown!r} ({percent})")
            if status.text != "ready":
                fail(f"the page says {status.text!r} after drawing {digit}")
            if shown != digit:
                fail(f"drew {digit}, the page predicts {shown!r}")
            if len(best) != 1 or best[0].text != digit:
                fail(f"drew {digit}, the highlighted bar is {[b.text for b in best]}")
        browser.save_screenshot(screenshot)
    finally:
        browser.quit()


def draw(actions, pad, strokes):
    """Pointer strokes on the pad; offsets are from the element's centre (280x280 CSS px)."""
    for stroke in strokes:
        x0, y0 = stroke[0]
        actions.move_to_element_with_offset(pad, x0 - 140, y0 - 140).click_and_hold()
        for (xa, ya), (xb, yb) in zip(stroke, stroke[1:]):
            for step in range(1, 6):  # several moves per segment, as a hand makes
                t = step / 5
                actions.move_to_element_with_offset(pad, round(xa + t * (xb - xa)) - 140,
                                                    round(ya + t * (yb - ya)) - 140)
        actions.release()
    actions.perform()


def settle(prediction, before):
    """Waits until the page has answered and sent no new request for half a second."""
    wait_for(lambda: int(prediction.get_attribute("data-requests")) > before,
             "a prediction after drawing")
    last, since = None, time.monotonic()
    while time.monotonic() - since < 0.5:
        count = prediction.get_attribute("data-requests")
        if count != last:
            last, since = count, time.monotonic()
        time.sleep(0.05)


def wait_for(condition, what, timeout=15):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


if __name__ == "__main__":
    main()
