"""The lab: corpus, codec and LM training (`lab.training`), evaluation (`lab.eval`, `python -m lab.evaluate`),
benchmarks (`lab.bench`) and the GPU-host drivers and experiment scripts (`lab/scripts/`).

Not packaged: `pip install .` ships the `lina` library only. Run the lab from the repository root
(`python3 -m lab.training.lm ...`), where `lab` is importable. The library never imports the lab
(tests/test_import_graph.py checks it).
"""
