"""The demo in a real browser: examples/app.py serves a tiny model on 127.0.0.1, headless Chromium (Debian's chromium
and chromium-driver, through Selenium) enters a puzzle, presses Solve and steps through the trace, and the page shows
what `pipeline("puzzle-solving")` answers: the answer, the steps used, the halting probabilities, every step's answer.
A malformed puzzle is a message in the page. Skipped, saying why, where the demo's extra or the browser is missing
(`pip install -e ".[demo]"`; `apt-get install -y chromium chromium-driver`). With LSTM_TRM_SCREENSHOT=FILE the page
is saved there; LSTM_TRM_APP_MODEL and LSTM_TRM_APP_PUZZLE put a model of your own and its puzzle on the page instead
of the tiny test model (the README's screenshot: the main job's model on a held-out 6x6 puzzle)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="the demo's extra is not installed: pip install -e \".[demo]\"")
pytest.importorskip("selenium", reason="the demo's extra is not installed: pip install -e \".[demo]\"")

ROOT = Path(__file__).resolve().parents[1]
BROWSER, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (BROWSER and DRIVER),
                                reason="no chromium and chromedriver: apt-get install -y chromium chromium-driver")
PUZZLE = os.environ.get("LSTM_TRM_APP_PUZZLE", "1.....2..3.....4")


@pytest.fixture(scope="module")
def model_folder(trained) -> str:
    return os.environ.get("LSTM_TRM_APP_MODEL") or str(trained["sudoku"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(model_folder):
    """examples/app.py on the tiny Sudoku model, on a free port of 127.0.0.1."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "examples" / "app.py"), "--model", model_folder,
                                "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**{k: v for k, v in os.environ.items() if k != "GRADIO_SERVER_NAME"},
                                    "GRADIO_ANALYTICS_ENABLED": "False"})
    for line in process.stdout:  # the app says where it listens (a JSON line), then starts the server
        if line.startswith("{"):
            started = json.loads(line)
            break
    else:
        pytest.fail("the app ended before it said where it listens")
    threading.Thread(target=lambda: process.stdout.read(), daemon=True).start()  # its log never fills the pipe
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"the app did not listen on port {port}: {process.stdout.read()}")
    assert started["url"] == f"http://127.0.0.1:{port}"  # this machine only, unless asked
    yield started["url"]
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1500"):
        options.add_argument(flag)
    options.binary_location = BROWSER
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def value(driver, elem_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"#{elem_id} textarea, #{elem_id} input").get_attribute("value")


def wait_for(driver, condition, seconds: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.2).until(lambda d: condition())


def type_and_solve(driver, url: str, puzzle: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    box = wait_for(driver, lambda: driver.find_element(By.CSS_SELECTOR, "#puzzle textarea"))
    box.clear()
    box.send_keys(puzzle)
    driver.find_element(By.CSS_SELECTOR, "#solve").click()


def test_the_page_shows_what_the_pipeline_answers_step_by_step(app, browser, model_folder):
    from selenium.webdriver.common.by import By
    from transformers import pipeline

    expected = pipeline("puzzle-solving", model=model_folder)(PUZZLE, return_trace=True)
    assert expected["steps"] > 1  # there is a trace to step through
    type_and_solve(browser, app, PUZZLE)
    wait_for(browser, lambda: value(browser, "steps"))
    assert value(browser, "answer").replace("\n", "") == expected["answer"]
    assert value(browser, "steps") == str(expected["steps"])
    assert value(browser, "halting") == ", ".join(f"{k + 1}: {p:.4f}"
                                                  for k, p in enumerate(expected["halting_probability"]))
    assert value(browser, "verdict") == ("passes the task's check" if expected["valid"]
                                         else "does NOT pass the task's check")
    assert value(browser, "step_answer") == expected["trace"][-1]
    cells = browser.find_elements(By.CSS_SELECTOR, "#grid td")
    assert "".join(cell.text for cell in cells) == expected["answer"]
    for step in range(expected["steps"] - 1, 0, -1):  # back through the trace, a step at a time
        browser.find_element(By.CSS_SELECTOR, "#previous").click()
        wait_for(browser, lambda s=step: value(browser, "step_answer") == expected["trace"][s - 1])
        changed = browser.find_elements(By.CSS_SELECTOR, "#grid td.changed")
        marked = {cell.get_attribute("data-cell") for cell in changed}
        before = PUZZLE.replace(".", "0") if step == 1 else expected["trace"][step - 2]
        assert marked == {str(k) for k, (a, b) in enumerate(zip(before, expected["trace"][step - 1])) if a != b}
    if os.environ.get("LSTM_TRM_SCREENSHOT"):
        browser.find_element(By.CSS_SELECTOR, "#next").click()
        time.sleep(1)
        browser.save_screenshot(os.environ["LSTM_TRM_SCREENSHOT"])


def test_a_malformed_puzzle_is_a_message_in_the_page(app, browser):
    type_and_solve(browser, app, "1x3.")
    from selenium.webdriver.common.by import By

    message = wait_for(browser, lambda: browser.find_element(By.CSS_SELECTOR, "#message").text)
    assert "Not solved" in message and "does not know" in message
    assert "Traceback" not in browser.page_source


def test_generate_puts_a_puzzle_of_the_models_task_in_the_box(app, browser, model_folder):
    from selenium.webdriver.common.by import By

    browser.get(app)
    wait_for(browser, lambda: browser.find_element(By.CSS_SELECTOR, "#generate")).click()
    text = wait_for(browser, lambda: value(browser, "puzzle"))
    rows = text.split("\n")
    assert len(rows) == len(rows[0]) and all(len(row) == len(rows) for row in rows)  # a square grid, a row a line
    assert set(text) <= set(".0123456789\n")
