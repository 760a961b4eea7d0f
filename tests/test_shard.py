"""Sharded rescoring and teacher caching: shards + merge == one job, missing shards refused."""
from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
import torch

from asr_kd.cli import main
from asr_kd.errors import InputError
from asr_kd.modeldir import save_model
from asr_kd.models import LMConfig, LstmLM
from asr_kd.nbest import write_jsonl
from asr_kd.nbest.model import Hyp, NBest, Utterance
from asr_kd.sharding import shard_bounds, shard_path
from asr_kd.teacher_cache import TeacherCache, build_cache, finish_cache
from asr_kd.vocab import WordVocab

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = "the cat sat on a mat dog ran fast and of big".split()


@pytest.fixture
def setup(tmp_path):
    """A tiny model folder and an N-best file with cross-utterance duplicates,
    empty hypotheses and an utterance without hypotheses."""
    tok = WordVocab(["<s>", "</s>", "<unk>"] + WORDS)
    torch.manual_seed(0)
    model = LstmLM(LMConfig(vocab_size=tok.size, embed_dim=8, hidden_dim=12, init_range=0.5))
    save_model(model, tok, str(tmp_path / "lm"))
    rng = random.Random(0)
    utts = []
    for u in range(14):
        base = [rng.choice(WORDS + ["zebra"]) for _ in range(rng.randint(2, 8))]
        hyps = [Hyp(" ".join(base), {"am": -rng.random() * 10})]
        for _ in range(rng.randint(0, 4)):
            w = list(base)
            w[rng.randrange(len(w))] = rng.choice(WORDS)
            hyps.append(Hyp(" ".join(w), {"am": -rng.random() * 10}))
        hyps.append(Hyp("the cat sat", {"am": -3.0}))       # shared by every utterance
        if u % 5 == 0:
            hyps.append(Hyp("", {"am": -9.0}))
        utts.append(Utterance(f"utt{u:02d}", hyps if u != 7 else [], ref=" ".join(base)))
    write_jsonl(NBest(utts), str(tmp_path / "in.jsonl.gz"))
    return tmp_path


def rescore(d, out, *extra):
    # small --batch-tokens: many scoring groups, so shards share groups across their edges
    return main(["rescore", "--nbest", str(d / "in.jsonl.gz"), "--model", str(d / "lm"),
                 "--name", "lm", "--out", str(out), "--batch-tokens", "30", "--device", "cpu",
                 "--quiet", *extra])


def test_shard_bounds_cover_everything_once():
    for n_utts in (0, 1, 5, 14):
        for n in (1, 2, 3, 7):
            blocks = [shard_bounds(n_utts, i, n) for i in range(n)]
            assert blocks[0][0] == 0 and blocks[-1][1] == n_utts
            assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
            assert max(b - a for a, b in blocks) - min(b - a for a, b in blocks) <= 1


@pytest.mark.parametrize("n", [2, 3])
def test_sharded_rescoring_merged_is_byte_identical(setup, n, capsys):
    d = setup
    assert rescore(d, d / "full.jsonl.gz") == 0
    out = d / "resc.jsonl.gz"
    for i in reversed(range(n)):                   # order of the jobs does not matter
        assert rescore(d, out, "--shard", f"{i}/{n}") == 0
        assert os.path.isfile(shard_path(str(out), i, n))
    assert not out.exists()
    assert main(["merge", "--kind", "rescore", str(out)]) == 0
    assert out.read_bytes() == (d / "full.jsonl.gz").read_bytes()
    assert f"merged {n} shard(s)" in capsys.readouterr().out


def test_missing_stale_or_changed_shards_are_refused(setup, capsys):
    d = setup
    out = d / "resc.jsonl.gz"
    for i in (0, 2):
        assert rescore(d, out, "--shard", f"{i}/3") == 0
    capsys.readouterr()
    assert main(["merge", "--kind", "rescore", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing or unfinished shard(s) 1 of 3" in err and "--shard 1/3" in err
    assert len(err.splitlines()) == 1 and not out.exists()
    # a shard scored with another model under the same name is stale
    other = d / "lm2"
    torch.manual_seed(5)
    save_model(LstmLM(LMConfig(vocab_size=len(WORDS) + 3, embed_dim=8, hidden_dim=12)),
               WordVocab(["<s>", "</s>", "<unk>"] + WORDS), str(other))
    assert main(["rescore", "--nbest", str(d / "in.jsonl.gz"), "--model", str(other),
                 "--name", "lm", "--out", str(out), "--shard", "1/3", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["merge", "--kind", "rescore", str(out)]) == 2
    assert "shard 1 differs from shard 0 in 'models'" in capsys.readouterr().err
    assert rescore(d, out, "--shard", "1/3") == 0
    # a shard file changed after its sidecar was written
    path = shard_path(str(out), 2, 3)
    blob = open(path, "rb").read()
    open(path, "wb").write(blob[:-8])
    capsys.readouterr()
    assert main(["merge", "--kind", "rescore", str(out)]) == 2
    assert "shard 2 is missing or changed" in capsys.readouterr().err
    open(path, "wb").write(blob)
    # shards of two splits: ambiguous unless --num-shards says which
    assert rescore(d, out, "--shard", "0/1") == 0 and out.exists()   # 0/1 = plain output
    out.unlink()
    assert rescore(d, out, "--shard", "0/2") == 0
    capsys.readouterr()
    assert main(["merge", "--kind", "rescore", str(out)]) == 2
    assert "several splits" in capsys.readouterr().err
    assert main(["merge", "--kind", "rescore", str(out), "--num-shards", "3"]) == 0
    assert rescore(d, d / "full.jsonl.gz") == 0
    assert out.read_bytes() == (d / "full.jsonl.gz").read_bytes()
    assert main(["merge", "--kind", "rescore", str(d / "none.jsonl.gz")]) == 2
    assert "no rescoring shards found" in capsys.readouterr().err


def test_shards_need_jsonl_output(setup, capsys):
    assert rescore(setup, setup / "k", "--shard", "0/2", "--out-format", "kaldi") == 2
    assert "--out-format jsonl" in capsys.readouterr().err


def test_sharded_cache_merge_checks_every_shard(tmp_path, capsys):
    rng = random.Random(1)
    sents = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8))) for _ in range(40)]
    tok = WordVocab.build(sents)
    ids = [tok.encode(s) for s in sents]
    torch.manual_seed(0)
    teacher = LstmLM(LMConfig(vocab_size=tok.size, embed_dim=8, hidden_dim=8)).eval()
    out = str(tmp_path / "cache")
    for i in (0, 1):
        m = build_cache(teacher, tok, ids, out, topk=3, shard_tokens=40, job=(i, 3))
    assert m["num_shards"] >= 3 and m["missing_shards"]
    assert main(["merge", "--kind", "cache", out]) == 2
    err = capsys.readouterr().err
    missing = [s for s in range(m["num_shards"]) if s % 3 == 2]
    assert f"{len(missing)} of {m['num_shards']} cache shard(s) missing" in err
    assert ": " + ", ".join(map(str, missing)) in err
    # a job with other settings may not add shards to this folder
    with pytest.raises(InputError, match="other settings .*topk"):
        build_cache(teacher, tok, ids, out, topk=4, shard_tokens=40, job=(2, 3))
    build_cache(teacher, tok, ids, out, topk=3, shard_tokens=40, job=(2, 3))
    assert os.path.isfile(os.path.join(out, "manifest.json"))     # the last job wrote it
    os.unlink(os.path.join(out, "manifest.json"))
    assert main(["merge", "--kind", "cache", out]) == 0
    TeacherCache(out).check(tok, ids, "sentence", 32, 35, 400)
    with pytest.raises(InputError, match="no plan.json"):
        finish_cache(str(tmp_path))


@pytest.mark.slow  # torchrun
def test_torchrun_rescore_shards_by_rank_and_merges(setup):
    d = setup
    assert rescore(d, d / "full.jsonl.gz") == 0
    out = d / "resc.jsonl.gz"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    p = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "asr_kd.cli", "rescore", "--nbest", str(d / "in.jsonl.gz"), "--model",
         str(d / "lm"), "--name", "lm", "--out", str(out), "--batch-tokens", "30",
         "--device", "cpu", "--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "merged 2 shards" in p.stdout
    assert os.path.isfile(shard_path(str(out), 1, 2))
    assert out.read_bytes() == (d / "full.jsonl.gz").read_bytes()
