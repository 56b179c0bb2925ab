"""The decode back ends (lina.backends) on the CPU: choice, errors, and the CUDA graph back end's logic
(floors, alignments, blocks, padded text) with the graph replaced by calling its body, against the
reference loop's greedy tokens. The real CUDA runs are the `gpu` tests in tests/test_gpu.py."""
from types import SimpleNamespace

import pytest
import torch

import lina.backends.cuda as cuda_backends
from lina.backends import BACKENDS, Native, Reference, auto_name, choose
from lina.backends.cuda import CudaGraph, pad_context
from lina.config import LinaConfig
from lina.constants import EOS_ID
from lina.cuda_graphs import GraphDecoder
from lina.generate import GenerationConfig, generate, stream
from lina.logits import LogitProcessor
from lina.model import LinaModel
from lina.sampling import SamplingConfig

CFG = LinaConfig(d_model=32, n_layer=2, n_heads=2, text_layers=1, text_heads=2, n_text_vocab=40, n_codebook=64)
GREEDY = SamplingConfig(top_k=1)


class EagerGraph(GraphDecoder):
    """GraphDecoder whose "graph" is its body called eagerly: the same buffers, blocks and sampling."""

    needs_cuda = False

    def _capture(self):
        return SimpleNamespace(replay=self._body)


class CpuGraph(CudaGraph):
    """The cuda-graph back end's decoding logic on the CPU, in float32."""

    @classmethod
    def applies(cls, model):
        return None


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return LinaModel(CFG).eval()


def _ctx(model, *lengths):
    text = torch.randint(3, CFG.n_text_vocab, (len(lengths), max(lengths)))
    return model.encode_text(text, torch.tensor(lengths))


def test_choice_and_errors(model):
    assert auto_name(model) == "native" and isinstance(choose(model), Native)
    assert isinstance(choose(model, "reference"), Reference)
    backend = Reference(model)
    assert choose(model, backend) is backend
    with pytest.raises(ValueError, match="unknown decode back end"):
        choose(model, "warp-drive")
    with pytest.raises(ValueError, match="CUDA"):
        choose(model, "cuda-graph")
    assert auto_name(LinaModel(CFG).double()) == "reference"
    assert set(BACKENDS) == {"reference", "fused", "native", "cuda-graph", "cuda-graph-compiled", "cuda-graph-fla"}


def test_padded_context_changes_nothing(model):
    with torch.inference_mode():
        ctx = _ctx(model, 7, 3)
        padded = pad_context(ctx, 16)
        assert padded.keys.shape[1] == 16 and pad_context(padded, 16) is padded
        state = model.init_state(2)
        a, b = model.step(ctx, torch.tensor([4, 5]), state), model.step(padded, torch.tensor([4, 5]), state)
    torch.testing.assert_close(b.logits, a.logits)
    torch.testing.assert_close(b.alignment[..., :7], a.alignment)
    assert float(b.alignment[..., 7:].abs().max()) == 0.0


@pytest.mark.parametrize("with_prompt", [False, True])
def test_graph_backend_logic_gives_the_reference_tokens(model, monkeypatch, with_prompt):
    monkeypatch.setattr(cuda_backends, "GraphDecoder", EagerGraph)
    backend = CpuGraph(model, torch.float32)
    cfg = GenerationConfig(GREEDY, max_tokens=90, min_tokens=(4, 0, 30))
    with torch.inference_mode():
        ctx = _ctx(model, 9, 4, 12)
        prompt = torch.randint(0, CFG.n_codebook, (3, 6)) if with_prompt else None
        ref = generate(model, ctx, model.init_state(3), cfg, prompt, backend=Reference(model))
        out = generate(model, ctx, model.init_state(3), cfg, prompt, backend=backend, check_every=16)
        chunks = list(stream(model, ctx, model.init_state(3), cfg, prompt, chunk_tokens=7, backend=backend))
    assert [c.tolist() for c in out.codes] == [c.tolist() for c in ref.codes]
    assert torch.equal(out.finished, ref.finished) and out.steps == ref.steps
    torch.testing.assert_close(out.alignment, ref.alignment)
    streamed = [torch.cat([c[i] for c, _ in chunks]) for i in range(3)]
    assert [s.tolist() for s in streamed] == [c.tolist() for c in ref.codes]


def test_graph_backend_holds_eos_back_until_the_floor(model, monkeypatch):
    """A step that rates EOS first everywhere: each row ends exactly at its floor, across blocks."""
    monkeypatch.setattr(cuda_backends, "GraphDecoder", EagerGraph)

    def eos_first(ctx, token, state, inplace=False):
        out = model.step(ctx, token, state, inplace=inplace)
        out.logits[:, EOS_ID] += 1e4
        return out

    backend = CpuGraph(model, torch.float32)
    backend._step = eos_first
    floors = (3, 21, 40)
    cfg = GenerationConfig(GREEDY, max_tokens=80, min_tokens=floors)
    with torch.inference_mode():
        ctx = _ctx(model, 5, 6, 7)
        state = model.init_state(3)
        # the first token comes from the prefill (the model's own), so a floor of 0 would end at 1
        out = generate(model, ctx, state, cfg, backend=backend, check_every=16)
    assert [len(c) for c in out.codes] == list(floors) and bool(out.finished.all())
    assert out.steps == max(floors) + 1


class Ban(LogitProcessor):
    """An experiment's processor: one token never sampled. ``graph_safe`` as told."""

    def __init__(self, token: int, graph_safe: bool):
        self.mask = torch.zeros(CFG.n_codebook + 3, dtype=torch.bool)
        self.mask[token] = True
        self.graph_safe = graph_safe

    def apply(self, logits, step, last):
        return logits.masked_fill(self.mask, float("-inf"))


@pytest.mark.parametrize("graph_safe", [True, False])
def test_an_extra_processor_plugs_into_every_back_end(model, monkeypatch, graph_safe):
    """A processor in `GenerationConfig.processors` runs after the built-ins in the reference loop and in
    the graph back end (inside the graph when graph-safe, else through the eager loop on its copy)."""
    monkeypatch.setattr(cuda_backends, "GraphDecoder", EagerGraph if graph_safe else None)  # None: must not be used
    with torch.inference_mode():
        ctx = _ctx(model, 9, 4, 12)
        plain = generate(model, ctx, model.init_state(3), GenerationConfig(GREEDY, max_tokens=40))
        banned = int(torch.cat(plain.codes).mode().values) + 3  # the most frequent code, as a model-space id
        cfg = GenerationConfig(GREEDY, max_tokens=40, min_tokens=(5, 0, 9), processors=(Ban(banned, graph_safe),))
        ref = generate(model, ctx, model.init_state(3), cfg, backend=Reference(model))
        out = generate(model, ctx, model.init_state(3), cfg, backend=CpuGraph(model, torch.float32), check_every=16)
    assert all(banned - 3 not in c.tolist() for c in ref.codes)
    assert [c.tolist() for c in ref.codes] != [c.tolist() for c in plain.codes]
    assert [c.tolist() for c in out.codes] == [c.tolist() for c in ref.codes]
