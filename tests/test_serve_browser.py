"""fw serve's page in headless Chromium (Debian's chromium and chromium-driver, driven by selenium):
digits drawn with the mouse are read right, and the browser logs no error."""

import math
import os
from pathlib import Path

import pytest

from test_serve import _start

pytestmark = pytest.mark.slow  # a browser and a server process

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: Strokes as a person draws them on the 280x280 canvas: lists of (x, y) points, one list per stroke.
DIGITS = {
    "7": [[(70, 60), (210, 60), (130, 240)]],
    "1": [[(140, 40), (140, 240)]],
    "0": [[(140 + 60 * math.sin(a / 12 * math.pi), 140 - 95 * math.cos(a / 12 * math.pi)) for a in range(25)]],
    "4": [[(170, 40), (80, 170), (210, 170)], [(170, 90), (170, 250)]],
}


@pytest.fixture
def browser(tmp_path):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        msg = f"{' and '.join(missing)} missing: apt-get install chromium chromium-driver (.ci/run does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=800,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def draw(driver, canvas, strokes):
    """Each stroke as a mouse press, moves every few pixels, and a release, like a hand."""
    from selenium.webdriver.common.action_chains import ActionChains

    width, height = canvas.size["width"], canvas.size["height"]
    for stroke in strokes:
        chain = ActionChains(driver, duration=0)
        x0, y0 = stroke[0]
        chain.move_to_element_with_offset(canvas, round(x0 - width / 2), round(y0 - height / 2)).click_and_hold()
        for (xa, ya), (xb, yb) in zip(stroke, stroke[1:]):
            steps = max(1, int(math.dist((xa, ya), (xb, yb)) // 10))
            for k in range(1, steps + 1):
                x, y = xa + (xb - xa) * k / steps, ya + (yb - ya) * k / steps
                chain.move_to_element_with_offset(canvas, round(x - width / 2), round(y - height / 2))
        chain.release().perform()


def read(driver, strokes):
    """Clear, draw, and the page's answer once every stroke has been answered."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.ID, "clear").click()
    prediction = driver.find_element(By.ID, "prediction")
    assert prediction.text == ""
    canvas = driver.find_element(By.ID, "canvas")
    answers = []
    for stroke in strokes:  # the answer updates after each stroke
        draw(driver, canvas, [stroke])
        WebDriverWait(driver, 10).until(lambda d: prediction.text and prediction.text != (answers or [""])[-1])
        answers.append(prediction.text)
    return answers[-1]


def test_digits_drawn_with_the_mouse_are_read_right(browser, book, tmp_path):
    from selenium.webdriver.common.by import By

    process, url, _ = _start(*book)
    try:
        browser.get(url + "/")
        assert browser.title == "fw serve"
        for digit, strokes in DIGITS.items():
            answer = read(browser, strokes)
            name, probability = answer.split()
            assert name == digit, (digit, answer)
            assert 0.1 < float(probability) <= 1
            bars = browser.find_elements(By.CSS_SELECTOR, "#chart .bar")
            assert [b.text.split()[0] for b in bars] == list("0123456789")  # every class's probability
        browser.find_element(By.ID, "clear").click()
        assert browser.find_element(By.ID, "prediction").text == "" and not browser.find_elements(
            By.CSS_SELECTOR, "#chart .bar"
        )
        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert not errors, errors
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def book(mnist_dir, book_weights):
    from test_cli import BOOK

    return [BOOK, f"dataset.root={mnist_dir}", f"weights.path={book_weights}"]
