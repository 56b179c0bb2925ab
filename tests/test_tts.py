"""The public API on the tiny random model: shapes, batching, voices, cloning, streaming, errors."""
import numpy as np
import pytest
import torch

import lina.generate
import lina.tts
from lina.audio import AudioError
from lina.constants import EOS_ID, FRAME_RATE, HOP_LENGTH, SAMPLE_RATE
from lina.tokenizer import TextError
from lina.tts import LinaTTS, min_row_tokens, row_seconds, speech_end
from lina.voice import Voice, VoiceError


@pytest.fixture(scope="module")
def tts():
    return LinaTTS.from_pretrained("tiny-random", device="cpu")


def _tone(seconds=2.0, rate=SAMPLE_RATE):
    t = np.arange(int(seconds * rate)) / rate
    return rate, (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def test_synthesize_candidates_and_info(tts):
    out = tts.synthesize("Hello world, this is Lina. It has 2 sentences!", candidates=2, seed=3, max_seconds=3)
    assert len(out.audio) == 2 and all(a.dtype == np.float32 and a.ndim == 1 for a in out.audio)
    assert all(0 < len(a) <= (3 * 2 + 0.25) * SAMPLE_RATE for a in out.audio)
    assert "two sentences" in " ".join(out.text)
    assert out.tokens > 0 and out.real_time_factor > 0 and out.alignment.ndim == 2
    again = tts.synthesize("Hello world, this is Lina. It has 2 sentences!", candidates=2, seed=3, max_seconds=3)
    assert np.array_equal(out.audio[0], again.audio[0])


def test_voices_per_candidate_share_a_batch(tts, tmp_path):
    v, losses = tts.tune_voice([(_tone(2), "a tone"), (_tone(1.5), "another tone")], steps=3, batch_size=2)
    assert len(losses) == 3 and v.model_id == "tiny-random"
    v.save(tmp_path / "v.safetensors")
    v = Voice.load(tmp_path / "v.safetensors")
    greedy = {"top_k": 1, "max_seconds": 2}  # random draws depend on the batch size; argmax does not
    mixed = tts.synthesize("Two voices.", voice=[v, None], candidates=2, **greedy)
    voiced = tts.synthesize("Two voices.", voice=v, **greedy)
    plain = tts.synthesize("Two voices.", **greedy)
    for got, want in ((mixed.audio[0], voiced.audio[0]), (mixed.audio[1], plain.audio[0])):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4)  # batched codec decode: within 2e-5 per row


def test_clone_from_stereo_44k(tts):
    rate, mono = _tone(3, 44_100)
    out = tts.clone("Say this.", (rate, np.stack([mono, mono], axis=1)), "a humming tone", max_seconds=2)
    assert len(out.audio[0]) > 0


def test_clone_prompt_ends_where_its_speech_ends(tts, monkeypatch):
    """The prefix the model continues is BOS + the clip's codes up to the end of its sound: the trailing
    silence that load_audio keeps (a margin) would read as a finished utterance, whose next token is EOS."""
    rate, tone = _tone(1.0)
    clip = np.concatenate([tone, np.zeros(int(0.6 * rate), np.float32)])
    prompts = []
    real = lina.tts.generate

    def spy(model, ctx, state, cfg, prompt=None, **kwargs):
        prompts.append(prompt)
        return real(model, ctx, state, cfg, prompt, **kwargs)

    monkeypatch.setattr(lina.tts, "generate", spy)
    out = tts.clone("Say this.", (rate, clip), "a humming tone", max_seconds=2)
    assert prompts[0].shape == (int(1.0 * FRAME_RATE),)  # 1 s of tone = 75 frames, none of the silence
    assert torch.equal(prompts[0], tts.encode_audio((rate, tone)))
    # Only the continuation comes back, within the target sentence's own budget.
    assert 0 < len(out.audio[0]) <= row_seconds("Say this.", 2) * SAMPLE_RATE


def test_speech_end():
    rate, tone = _tone(1.0)
    assert speech_end(np.concatenate([tone, np.zeros(rate // 2, np.float32)])) == rate
    assert speech_end(tone[: rate // 2 + 7]) == rate // 2 + 7     # cut mid-sound: all of it
    assert speech_end(tone[:100]) == 100                           # shorter than one step


def test_rows_speak_a_minimum_before_eos(tts, monkeypatch):
    """Every synthesis path holds EOS back for a floor counted on the sentence to speak (not on the
    prompt's transcript): an early EOS of the model gives short audio, never empty audio."""
    real = lina.generate.sample_top_k
    # A model that rates EOS first at every step (whenever EOS is allowed, it is taken).
    monkeypatch.setattr(lina.generate, "sample_top_k", lambda logits, cfg, generator=None: torch.where(
        torch.isfinite(logits[:, EOS_ID]), EOS_ID, real(logits, cfg, generator)))
    short, long = "Here is a first sentence.", "A much longer sentence takes longer to say, so its floor is higher."
    assert tts.sentences(f"{short} {long}") == [short, long]
    floors = [min_row_tokens(s, int(row_seconds(s) * FRAME_RATE)) for s in (short, long)]
    assert 0 < floors[0] < floors[1]
    out = tts.synthesize(f"{short} {long}", seed=1)
    assert out.finished == [True] and out.tokens == sum(floors)
    assert len(out.audio[0]) == sum(floors) * HOP_LENGTH + int(lina.tts.PAUSE_SECONDS * SAMPLE_RATE)
    clone = tts.clone(short, _tone(2), "a much longer transcript of the prompt clip than the text", seed=1)
    assert clone.finished == [True] and clone.tokens == floors[0]
    streamed = sum(len(c) for c in tts.stream(short))
    assert streamed == floors[0] * HOP_LENGTH  # as synthesize: no silence after the last sentence


def _decoded_codes(tts, monkeypatch):
    """Spies on the codec: the codes `synthesize` decodes in its batch (per row) and the codes pushed to
    each streaming decoder (one decoder per row, in row order)."""
    batches, streamed = [], []
    decode_batch, streaming_decoder = tts.codec.decode_batch, tts.codec.streaming_decoder

    def batch_spy(codes, lengths):
        batches.append([row[:n].tolist() for row, n in zip(codes, lengths.tolist())])
        return decode_batch(codes, lengths)

    def decoder_spy(*args, **kwargs):
        decoder, row = streaming_decoder(*args, **kwargs), []
        push = decoder.push
        decoder.push = lambda codes: row.extend(codes[0].tolist()) or push(codes)
        streamed.append(row)
        return decoder

    monkeypatch.setattr(tts.codec, "decode_batch", batch_spy)
    monkeypatch.setattr(tts.codec, "streaming_decoder", decoder_spy)
    return batches, streamed


def test_stream_says_the_words_of_synthesize(tts, monkeypatch):
    """Same text, voices, candidates and seed: `stream` decodes exactly the codes `synthesize` decodes
    (one plan, one generation iterator), and its audio has the same length, silences included."""
    c, gen = tts.model.cfg, torch.Generator().manual_seed(0)
    voice = Voice(torch.randn(c.n_tunable_layers, 1, c.n_heads, c.head_k_dim, generator=gen),
                  3 * torch.randn(c.n_tunable_layers, 1, c.n_heads, c.head_v_dim, generator=gen), 1.0,
                  model_id=tts.model_id)
    text = "Hello there, this is the first sentence. [pause 0.4] And a second one!"
    batches, streamed = _decoded_codes(tts, monkeypatch)
    said = tts.synthesize(text, voice=[voice, None], candidates=2, seed=3, top_k=20, max_seconds=3)
    stream = tts.stream(text, voice=[voice, None], candidates=2, seed=3, top_k=20, max_seconds=3, chunk_tokens=7)
    pieces = list(stream)
    assert len(batches) == 1 and len(streamed) == 4 and streamed == batches[0]
    assert streamed[0] != streamed[2]  # the candidates differ (another voice, other draws)
    assert {p.candidate for p in pieces} == {0, 1} and all(p.audio.dtype == np.float32 for p in pieces)
    for candidate in (0, 1):
        audio = np.concatenate([p.audio for p in pieces if p.candidate == candidate])
        assert len(audio) == len(said.audio[candidate]) and np.array_equal(audio, stream.result.audio[candidate])
    got = stream.result
    assert (got.tokens, got.text, got.finished, got.marks) == (said.tokens, said.text, said.finished, said.marks)
    assert got.spans == said.spans


def test_stream_continues_a_prompt_as_clone(tts, monkeypatch):
    batches, streamed = _decoded_codes(tts, monkeypatch)
    cloned = tts.clone("Say this. Then that.", _tone(2), "a humming tone", seed=4, max_seconds=2)
    pieces = list(tts.stream("Say this. Then that.", prompt_audio=_tone(2), prompt_transcript="a humming tone",
                             seed=4, max_seconds=2))
    assert streamed == batches[0] and sum(len(p) for p in pieces) == len(cloned.audio[0])
    with pytest.raises(TextError, match="transcript"):
        tts.stream("Say this.", prompt_audio=_tone(2))


def test_stream_pieces_merge_to_the_asked_length(tts):
    plain = list(tts.stream("Streaming works. Twice.", seed=2))
    merged = list(tts.stream("Streaming works. Twice.", seed=2, piece_seconds=0.5))
    assert sum(map(len, merged)) == sum(map(len, plain)) and len(merged) < len(plain)
    assert all(len(p) >= 0.5 * SAMPLE_RATE for p in merged[1:-1])


def test_stream_yields_audio(tts):
    chunks = list(tts.stream("Streaming works. Twice."))
    assert sum(len(c) for c in chunks) > SAMPLE_RATE // 2 and all(c.dtype == np.float32 for c in chunks)


def test_stream_resumes_on_another_thread(tts):
    # A server resumes generators on whichever worker is free; inference mode is per thread.
    import threading

    chunks, got, errors = tts.stream("hello there. and again.", seed=0, chunk_tokens=4), [], []

    def one_step():
        try:
            got.append(next(chunks))
        except Exception as error:  # noqa: BLE001 (reported by the assertion below)
            errors.append(error)

    for _ in range(6):  # a fresh thread for every step
        worker = threading.Thread(target=one_step)
        worker.start()
        worker.join()
    assert not errors and len(got) == 6 and all(c.dtype == np.float32 and c.ndim == 1 for c in got)


@pytest.mark.parametrize("text", ["", "   ", "###", "\u2603\u2603"])
def test_unspeakable_text(tts, text):
    with pytest.raises(TextError):
        tts.synthesize(text)


def test_missing_transcript_and_bad_audio(tts):
    with pytest.raises(TextError, match="transcript"):
        tts.clone("Hi.", _tone(), "  ")
    with pytest.raises(AudioError):
        tts.clone("Hi.", (SAMPLE_RATE, np.zeros(SAMPLE_RATE * 2, dtype=np.float32)), "silence")
    with pytest.raises(AudioError):
        tts.clone("Hi.", b"definitely not audio", "noise")


def test_tuning_names_the_bad_clip_and_leaves_the_model_frozen(tts):
    with pytest.raises(AudioError, match="clip 2"):
        tts.tune_voice([(_tone(2), "a tone"), (b"garbage", "noise")], steps=1)
    assert not any(p.requires_grad for p in tts.model.parameters())


def test_foreign_voice_is_refused(tts):
    import torch

    foreign = Voice(torch.zeros(6, 1, 3, 8), torch.zeros(6, 1, 3, 8))
    with pytest.raises(VoiceError):
        tts.synthesize("Hello.", voice=foreign)


def test_save_and_reload_folder(tts, tmp_path):
    tts.save_pretrained(tmp_path / "m")
    again = LinaTTS.from_pretrained(str(tmp_path / "m"), device="cpu")
    a = tts.synthesize("Same model.", max_seconds=1).audio[0]
    b = again.synthesize("Same model.", max_seconds=1).audio[0]
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_package_exports_the_public_api():
    import lina
    from lina.tts import LinaTTS
    from lina.voice import Voice

    assert lina.LinaTTS is LinaTTS and lina.Voice is Voice and sorted(lina.__all__) == ["LinaTTS", "Voice"]
    with pytest.raises(AttributeError):
        lina.NotThere  # noqa: B018
