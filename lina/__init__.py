"""Lina-Speech: a codec language model with gated linear attention and initial-state tuning.

    from lina import LinaTTS, Voice

Both names load on first use (`lina.tts`, `lina.voice`), so importing a submodule such as
`lina.text` does not pull in the model code.
"""
__all__ = ["LinaTTS", "Voice"]


def __getattr__(name: str):
    if name == "LinaTTS":
        from lina.tts import LinaTTS

        return LinaTTS
    if name == "Voice":
        from lina.voice import Voice

        return Voice
    raise AttributeError(f"module 'lina' has no attribute {name!r}")
