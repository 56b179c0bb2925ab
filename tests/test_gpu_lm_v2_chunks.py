"""lab/scripts/gpu_lm_v2.sh with the Kokoro expansion's chunks, dry on this machine: `CHUNK=K codes_back` sends
chunk K's shards (its own codes folder), `CHUNK=K codes_join` rebuilds them in chunk K's folder here, a carry call
of the next lease unpacks every returned chunk into its codes folder, and `union` (what `train` trains on)
merges v2's and the chunks' finalized codes folders, refusing codes of another codec."""
import gzip
import json
import tarfile
from pathlib import Path

import numpy as np

from lab.training.codec.freeze import codes_id
from lina.codec.codec import Codec
from lm_v2_script import CODEC
from lm_v2_script import run_script as _sh


def _shards(codes: Path, ident: str, ids: list[str]) -> None:
    (codes / "shards").mkdir(parents=True)
    frames = np.full(len(ids), 5)
    np.savez(codes / "shards" / "00000.npz", ids=np.array(ids), frames=frames,
             codes=np.zeros((int(frames.sum()), 1), np.uint16), codes_id=np.array(ident))


def _finalized(codes: Path, ident: str, ids: list[str], first_code: int) -> None:
    """A codes folder as `render_codes finalize` leaves it: train split, codec/codes.json, phoneme table."""
    (codes / "codec").mkdir(parents=True)
    (codes / "codec" / "codes.json").write_text(json.dumps({"codes_id": ident}))
    np.save(codes / "train.codes.npy", np.arange(first_code, first_code + 2 * len(ids), dtype=np.uint16))
    with gzip.open(codes / "train.jsonl.gz", "wt") as f:
        f.writelines(json.dumps({"id": i, "text": "a b.", "offset": 2 * k, "frames": 2}) + "\n" for k, i in enumerate(ids))


def test_chunk_codes_back_join_and_carry(tmp_path):
    ident = codes_id(Codec.from_pretrained(CODEC))
    host, site = tmp_path / "host", tmp_path / "site"
    _shards(host / "codes_chunk2", ident, ["c2a", "c2b"])
    _shards(host / "codes", ident, ["v2a"])  # v2's render: not what CHUNK=2 sends
    env = {"DATA": host, "SITE": site, "CHUNK": 2, "CHUNKS_BACK": tmp_path / "back_chunk"}
    sent = _sh("codes_back", "1", OUT=tmp_path / "out", **env)
    assert sent.returncode == 0 and "rows in shards: 2" in sent.stdout and "last part" in sent.stdout, sent.stdout + sent.stderr
    assert (host / "codes_back_chunk2").is_dir() and not (host / "codes_back").exists()
    joined = _sh("codes_join", str(tmp_path / "out"), **{**env, "DATA": tmp_path / "here"})
    assert joined.returncode == 0, joined.stdout + joined.stderr
    back = tmp_path / "back_chunk2_back"
    assert f"{back}: 2 rows in 1 shards, codes id {ident}" in joined.stdout

    # `pack` appends each returned chunk to chunk_codes.tar as codes_chunkK/shards; a carry call unpacks it.
    carry = tmp_path / "carry"
    (carry / "c2").mkdir(parents=True)
    with tarfile.open(carry / "c2" / "chunk_codes.tar.part.00", "w") as tar:
        tar.add(back / "shards", arcname="codes_chunk2/shards")
    (carry / "c2" / "chunk_codes.tar.parts").write_text("1")
    lease = tmp_path / "lease2"
    unpacked = _sh("c2", CARRY=carry, DATA=lease, SITE=site, OUT=tmp_path / "out_c2")
    assert "codes carried: 1 shards of codes_chunk2" in unpacked.stdout, unpacked.stdout + unpacked.stderr
    assert sorted(np.load(lease / "codes_chunk2" / "shards" / "00000.npz")["ids"]) == ["c2a", "c2b"]


def test_union_merges_v2_and_the_finalized_chunks(tmp_path):
    data = tmp_path / "data"
    _finalized(data / "codes", "174d643f448e2a0d", ["v2a", "v2b"], 0)
    _finalized(data / "codes_chunk1", "174d643f448e2a0d", ["c1a"], 100)
    (data / "codes_chunk2" / "shards").mkdir(parents=True)  # rendered in part: not finalized, not used
    (data / "phonemes.json.gz").write_bytes(gzip.compress(b"{}"))
    done = _sh("union", DATA=data, SITE=tmp_path / "site", OUT=tmp_path / "out")
    assert done.returncode == 0 and done.stdout.strip().endswith(str(data / "codes_all")), done.stdout + done.stderr
    merged = data / "codes_all"
    with gzip.open(merged / "train.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    codes = np.load(merged / "train.codes.npy")
    assert [(r["id"], codes[r["offset"]: r["offset"] + r["frames"]].tolist()) for r in rows] == \
        [("v2a", [0, 1]), ("v2b", [2, 3]), ("c1a", [100, 101])]
    assert (merged / "phonemes.json.gz").exists() and json.loads((merged / "summary.json").read_text())["codes_id"]
    (data / "codes_chunk1" / "codec" / "codes.json").write_text(json.dumps({"codes_id": "0123456789abcdef"}))
    refused = _sh("union", DATA=data, SITE=tmp_path / "site", OUT=tmp_path / "out")
    assert refused.returncode != 0 and "different codecs" in refused.stderr
    alone = tmp_path / "alone"
    _finalized(alone / "codes", "174d643f448e2a0d", ["v2a"], 0)
    assert _sh("union", DATA=alone, SITE=tmp_path / "site", OUT=tmp_path / "out").stdout.strip() == str(alone / "codes")
