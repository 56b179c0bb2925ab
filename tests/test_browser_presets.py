"""The presets tab in a real browser when the loaded model has no state for a preset: the page says
it will be tuned on first use (with the expected time), Speak tunes it inside the request, plays it,
and the status then says ready. Tiny random model, 2-step presets (tests/test_preset_tuning.py)."""
from __future__ import annotations

import pytest

from test_browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, PAGE_TIMEOUT_MS, fetch_wav, open_tab, shot, sync_api, text_of
from test_app import launch_app
from test_preset_tuning import make_folder

STATUS_JS = "(words) => document.querySelector('#presets-status')?.innerText.includes(words)"


@pytest.fixture
def presets_site(tmp_path, monkeypatch):
    monkeypatch.setenv("LINA_PRESET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LINA_PRESET_TUNING", "first-use")
    demo, url = launch_app(make_folder(tmp_path))
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield url, browser
            finally:
                browser.close()
    finally:
        demo.close()


def test_a_preset_without_a_state_shows_its_status_then_is_tuned_and_plays(presets_site):
    url, browser = presets_site
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.goto(url)
        open_tab(page, "Expressive voices")
        page.wait_for_function(STATUS_JS, arg="will be tuned for this model on first use (about")
        assert "2 presets: 2 tuned on first use" in page.locator("#presets-status").inner_text()
        shot(page, "15-presets-status-before")
        page.locator("#presets-text textarea").fill("A preset tuned on first use speaks.")
        page.locator("#presets-speak").click()
        fetch_wav(page, "presets-audio")
        assert "Preset: Alpha" in text_of(page, "presets-info")
        page.wait_for_function(STATUS_JS, arg="Status: ready (tuned here)")
        assert "1 ready" in page.locator("#presets-status").inner_text()
        shot(page, "16-presets-tuned-and-played")
    finally:
        context.close()
