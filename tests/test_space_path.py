"""lab/bench/space_path.py on the CPU with the tiny random model: one measuring process, its rows and table."""
import json

from lab.bench import space_path


def test_space_path_measure_phase_on_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path))
    monkeypatch.setenv("LINA_KERNEL_CACHE", str(tmp_path / "cache"))
    data = space_path.main(["--model", "tiny-random", "--device", "cpu", "--quick", "--tune-steps", "2",
                            "--repeats", "1", "--row-seconds", "1", "--batches", "1", "4", "--phase", "measure"])
    rows = {r["what"]: r for r in data["rows"]}
    assert set(rows) == {"synthesize_b1", "synthesize_b4", "stream_first_audio", "clone_10s_prompt",
                         "tune_voice_2_steps"}
    assert rows["synthesize_b4"]["rows"] == 4 and rows["synthesize_b1"]["tokens"] <= 75
    assert all(r["first_s"] > 0 and r["steady_s"] > 0 for r in rows.values())
    assert data["backend"] == "native" and data["complete"]
    saved = json.loads((tmp_path / "space_path_measure.json").read_text())
    assert saved["rows"] == data["rows"]
    data["cold"] = {"warm_up_s": 1.5}
    table = space_path.table(data)
    assert "| synthesize_b4 |" in table and "empty cache 1.5 s" in table
