"""Helpers of the Gradio Space (`app.py`): model choice, input checks, outputs, presets, error mapping.

The app only wires the UI; every piece of model work goes through `lina`'s public API (`lina.tts`).
"""
