"""Training code for lina-mini: corpus generation (corpus/), codec and model training."""
