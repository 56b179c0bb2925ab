"""The dialogue tab in a real browser (the app and Chromium of tests/test_browser.py): a two-speaker
script gives one audio file, the per-line table, and subtitles that download and parse back."""
from __future__ import annotations

from test_browser import (GENERATION_TIMEOUT_MS, fetch_wav, open_tab, page, shot, site,  # noqa: F401  isort: skip
                          text_of)

from lina.subtitles import parse_srt, parse_vtt

SCRIPT = "Ava: Hello Leo, are you ready?\nLeo: Ready when you are. [pause 0.4] Let us go."


def test_dialogue_tab_two_speakers_and_subtitles(page):
    open_tab(page, "Dialogue and subtitles")
    page.locator("#dialogue-script textarea").fill(SCRIPT)
    page.locator("#dialogue-button").click()
    fetch_wav(page, "dialogue-audio")
    info = text_of(page, "dialogue-info")
    assert "2 lines, 3 sentences in one batch" in info and "pauses: 1 pause (0.4 s)" in info, info
    page.locator("#dialogue-table").get_by_text("Leo").first.wait_for()
    links = page.locator("#dialogue-subtitles a[download], #dialogue-subtitles a[href]")
    links.first.wait_for(state="attached", timeout=GENERATION_TIMEOUT_MS)
    files = {}
    for i in range(links.count()):
        href = links.nth(i).get_attribute("href")
        response = page.request.get(href)
        assert response.ok, response.status
        files[href.rsplit(".", 1)[-1]] = response.text()
    words = "Hello Leo, are you ready? Ready when you are. Let us go.".split()
    for cues in (parse_srt(files["srt"]), parse_vtt(files["vtt"])):
        assert " ".join(c.text for c in cues).split() == words
        assert cues[0].speaker == "Ava" and cues[-1].speaker == "Leo"
    shot(page, "15-dialogue-result")


def test_speak_tab_downloads_subtitles(page):
    open_tab(page, "Expressive voices")
    page.locator("#presets-text textarea").fill("A preset voice speaks. [pause 0.3] Then it stops.")
    page.locator("#presets-speak").click()
    fetch_wav(page, "presets-audio")
    link = page.locator("#presets-subtitles a[href]").first
    link.wait_for(state="attached", timeout=GENERATION_TIMEOUT_MS)
    assert "pauses: 1 pause (0.3 s)" in text_of(page, "presets-info")
