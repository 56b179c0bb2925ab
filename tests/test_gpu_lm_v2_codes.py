"""lab/scripts/gpu_lm_v2.sh's codes round trip, dry on this machine: `codes_back` on the "host" cuts the
render's shards into parts for $OUT over several calls, `codes_join` here rebuilds and checks them, and a
carry call of the next lease unpacks them into its codes folder, where render_codes resumes (same codec) or
refuses them (another codec)."""
import tarfile
from pathlib import Path

import numpy as np
import pytest

from lab.training.codec.freeze import codes_id
from lab.training.corpus.codes_shards import OtherCodec, done_ids
from lina.codec.codec import Codec
from lm_v2_script import CODEC
from lm_v2_script import run_script as _sh


def _shards(codes: Path, ident: str, rows: int, per_shard: int) -> set[str]:
    """Shards as render_codes writes them: random codes, 200-400 frames a row."""
    rng = np.random.default_rng(0)
    (codes / "shards").mkdir(parents=True)
    ids = [f"row{i}" for i in range(rows)]
    for k, start in enumerate(range(0, rows, per_shard)):
        part = ids[start:start + per_shard]
        frames = rng.integers(200, 400, len(part))
        np.savez(codes / "shards" / f"{k:05d}.npz", ids=np.array(part), frames=frames,
                 codes=rng.integers(0, 4096, (int(frames.sum()), 1)).astype(np.uint16), codes_id=np.array(ident))
    return set(ids)


def test_codes_back_join_and_carry_round_trip(tmp_path):
    ident = codes_id(Codec.from_pretrained(CODEC))
    host = tmp_path / "host"
    rows = _shards(host / "codes", ident, rows=300, per_shard=100)  # ~170 kB in 3 shards
    env = {"DATA": host, "SITE": tmp_path / "site", "CODES_PART": "40k", "CODES_PARTS_PER_CALL": 3}
    outs = []
    for call in (1, 2):
        out = tmp_path / f"out{call}"
        done = _sh("codes_back", str(call), OUT=out, **env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"call {call} of 2" in done.stdout and "rows in shards: 300" in done.stdout
        assert all(f.stat().st_size <= 40 * 1024 for f in out.glob("codes.tar.part*"))
        outs.append(out)
    assert "last part" in done.stdout
    assert _sh("codes_back", "3", OUT=tmp_path / "out3", **env).returncode != 0  # nothing left to send

    back = tmp_path / "back"
    missing = _sh("codes_join", str(outs[0]), CODES_BACK=back, DATA=tmp_path / "here", SITE=tmp_path / "site")
    assert missing.returncode != 0 and "missing or damaged" in missing.stdout  # call 2's parts not given
    joined = _sh("codes_join", *map(str, outs), CODES_BACK=back, DATA=tmp_path / "here", SITE=tmp_path / "site")
    assert joined.returncode == 0, joined.stdout + joined.stderr
    assert f"300 rows in 3 shards, codes id {ident}" in joined.stdout

    # What `pack` puts in a carry for the codes (one piece here), and the next lease's carry call.
    carry = tmp_path / "carry"
    (carry / "c2").mkdir(parents=True)
    with tarfile.open(carry / "c2" / "codes.tar.part.00", "w") as tar:
        tar.add(back / "shards", arcname="shards")
    (carry / "c2" / "codes.tar.parts").write_text("1")
    lease = tmp_path / "lease2"
    unpacked = _sh("c2", CARRY=carry, DATA=lease, SITE=tmp_path / "site", OUT=tmp_path / "out_c2")
    assert "codes carried: 3 shards" in unpacked.stdout, unpacked.stdout + unpacked.stderr
    assert done_ids(lease / "codes", ident) == rows  # render_codes resumes from these rows
    with pytest.raises(OtherCodec):
        done_ids(lease / "codes", "0123456789abcdef")
