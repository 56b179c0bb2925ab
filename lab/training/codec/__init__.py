"""Codec training: discriminators, GAN and mel losses, and the trainer."""
