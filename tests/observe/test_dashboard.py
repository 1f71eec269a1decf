"""The dashboard at ``/ui`` in headless Chromium (Debian ``chromium`` + ``chromium-driver``,
driven by Selenium): signing in with the admin key, charts drawn from real traffic through
the gateway (pixels of the series colour on the canvases), filled tables, no console
errors; the screenshots in docs/images/ come from here (DRAGOMAN_SCREENSHOTS=1)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.upstream import OPENAI_KEY, FakeUpstream
from tests.gateway_proc import run_gateway

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ADMIN = "adm-dashboard-key-42"
KEYS = {"acme": "sk-acme-dash", "globex": "sk-globex-dash"}
PRICE = {"input_cost_per_mtok": 2.0, "output_cost_per_mtok": 10.0}
# The screenshots are refreshed in docs/images/ only when asked (DRAGOMAN_SCREENSHOTS=1), so
# a test run leaves the checkout as it was; otherwise they go to a temporary directory.
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images" \
    if os.environ.get("DRAGOMAN_SCREENSHOTS") == "1" else Path(tempfile.mkdtemp(prefix="dash-"))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("dash")
    with FakeUpstream() as upstream:
        def model(name: str) -> dict[str, Any]:
            return {"name": name, "provider": "openai", "model": "gpt-fake-chat",
                    "base_url": upstream.url + "/v1", "api_key": OPENAI_KEY,
                    "capabilities": PRICE}

        config = {
            "server": {"admin_keys": [ADMIN]},
            "auth": {"type": "static", "tokens": [
                {"token": k, "tenant": t} for t, k in KEYS.items()]},
            "sessions": {"backend": "sqlite", "path": str(tmp / "sessions.db")},
            "models": [model("gpt-large"), model("gpt-small")],
        }
        with run_gateway(config, tmp, ready_timeout=90) as base:
            _traffic(base)
            yield base


def _traffic(base: str) -> None:
    plan = [("acme", "gpt-large", False, "hello")] * 4 + \
        [("globex", "gpt-small", True, "hello")] * 3 + \
        [("acme", "gpt-small", False, "scenario:error500 boom"),
         ("globex", "gpt-large", False, "scenario:error400 too long")]
    for tenant, model, stream, text in plan:
        httpx.post(f"{base}/v1/chat/completions", timeout=30,
                   headers={"authorization": f"Bearer {KEYS[tenant]}"},
                   json={"model": model, "stream": stream,
                         "messages": [{"role": "user", "content": text}]})
    deadline = time.monotonic() + 30  # the ledger is written in batches, about every second
    while time.monotonic() < deadline:
        rows = httpx.get(f"{base}/admin/usage", timeout=10,
                         headers={"authorization": f"Bearer {ADMIN}"}).json()["data"]
        if len(rows) == len(plan):
            return
        time.sleep(0.3)
    raise AssertionError("the ledger did not catch up")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver_path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium/chromedriver missing; scripts/test installs them on CI")
        pytest.skip("chromium and chromium-driver are not installed")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    profile = tempfile.mkdtemp(prefix="dragoman-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1400,1000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=driver_path)
    driver = webdriver.Chrome(options=opts, service=service)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


_COLOURED = """
// Pixels in a series colour: axes, grid and text are grey, every series colour is not.
let n = 0;
for (const c of document.querySelectorAll('#' + arguments[0] + ' canvas')) {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < d.length; i += 4) {
    const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
    if (a > 200 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
  }
}
return n;
"""


def _errors(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_dashboard_draws_real_traffic(gateway: str, browser: Any) -> None:
    d = browser
    d.get(gateway + "/ui")
    wait = WebDriverWait(d, 30)
    wait.until(lambda d: d.find_element(By.ID, "login").is_displayed())
    assert not d.find_element(By.ID, "dash").is_displayed()  # nothing without the key
    # The document itself answers 401 without the key (the contract): Chromium reports
    # that one response; nothing else may fail.
    first = _errors(d)
    assert all("/ui - Failed to load resource" in e["message"] and "401" in e["message"]
               for e in first), first
    IMAGES.mkdir(parents=True, exist_ok=True)
    d.save_screenshot(str(IMAGES / "dashboard-login.png"))

    d.find_element(By.ID, "key").send_keys("wrong-key")
    d.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait.until(lambda d: "refused" in d.find_element(By.ID, "login-error").text)
    _errors(d)  # (the refused key's 401 on /admin/live, expected)

    d.find_element(By.ID, "key").send_keys(ADMIN)
    d.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait.until(lambda d: d.find_element(By.ID, "dash").is_displayed())
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recent tbody tr")) == 9)
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("updated"))
    assert d.execute_script("return sessionStorage.getItem('dragoman.adminKey')") == ADMIN
    assert ADMIN not in d.current_url

    assert d.find_element(By.ID, "c-requests").text == "9"
    assert d.find_element(By.ID, "c-errors").text == "2"
    for chart in ("ch-traffic", "ch-latency", "ch-tokens-tenant", "ch-tokens-model",
                  "ch-cost-tenant", "ch-cost-model", "ch-errors", "ch-ttft"):
        assert d.find_elements(By.CSS_SELECTOR, f"#{chart} .uplot canvas"), chart
        assert d.execute_script(_COLOURED, chart) > 20, chart
    legend = {e.text for e in d.find_elements(By.CSS_SELECTOR, "#ch-tokens-tenant .u-label")}
    assert {"acme", "globex"} <= legend
    errors = {e.text for e in d.find_elements(By.CSS_SELECTOR, "#ch-errors .u-label")}
    assert {"upstream", "context_length"} <= errors
    deployments = [r.text for r in d.find_elements(By.CSS_SELECTOR, "#deployments tbody tr")]
    assert any(r.startswith("gpt-large gpt-large#0") and "closed" in r for r in deployments)
    recent = d.find_element(By.CSS_SELECTOR, "#recent tbody").text
    assert "context_length" in recent and "upstream" in recent and "globex" in recent

    assert _errors(d) == []  # signed in: no console error, no failed request
    height = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(1400, max(1000, height))
    time.sleep(0.5)  # charts keep their size; let the resize settle
    d.save_screenshot(str(IMAGES / "dashboard.png"))
    assert _errors(d) == []
