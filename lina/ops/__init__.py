"""Time-mixing kernels of gated linear attention, with one interface for every back end."""
from lina.ops.gla import gla_chunked, gla_recurrent, gla_step
from lina.ops.dispatch import gla_sequence, gla_single_step

__all__ = ["gla_chunked", "gla_recurrent", "gla_step", "gla_sequence", "gla_single_step"]
