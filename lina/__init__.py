"""Lina-Speech: a codec language model with gated linear attention and initial-state tuning."""
