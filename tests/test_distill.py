"""Distillation objective, teacher cache and the distill/cache-teacher CLI."""
from __future__ import annotations

import csv
import os
import random

import pytest
import torch

from asr_kd.cli import main
from asr_kd.config import TrainConfig
from asr_kd.corpus import SentenceBatches, StreamBatches
from asr_kd.distill import KDObjective
from asr_kd.ops import KDConfig
from asr_kd.errors import InputError
from asr_kd.modeldir import load_model, save_model
from asr_kd.models import LMConfig, LstmLM, TeacherEnsemble
from asr_kd.teacher_cache import TeacherCache, build_cache
from asr_kd.train import train
from asr_kd.vocab import WordVocab

WORDS = "the a cat dog sees likes runs big small red".split()


def make_text(path, n, seed):
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            f.write(" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))) + "\n")
    return str(path)


@pytest.fixture
def corpus(tmp_path):
    return make_text(tmp_path / "train.txt", 60, 0), make_text(tmp_path / "valid.txt", 15, 1)


def tiny(vocab_size, h=12, seed=0):
    torch.manual_seed(seed)
    return LstmLM(LMConfig(vocab_size=vocab_size, embed_dim=h, hidden_dim=h, num_layers=1))


def sents(path):
    return [l.strip() for l in open(path) if l.strip()]


@pytest.fixture
def teacher_dir(tmp_path, corpus):
    tr, va = corpus
    out = str(tmp_path / "teacher")
    assert main(["train-lm", "--train", tr, "--valid", va, "--out", out, "--epochs", "2",
                 "--hidden-dim", "16", "--embed-dim", "16", "--num-layers", "1",
                 "--optimizer", "adamw", "--lr", "0.01", "--quiet"]) == 0
    return out


def test_topk_cache_with_full_k_equals_live_teacher(tmp_path, corpus):
    tr, _ = corpus
    tok = WordVocab.build(sents(tr))
    ids = [tok.encode(s) for s in sents(tr)]
    teacher, student = tiny(tok.size, 10, 1).eval(), tiny(tok.size, 8, 2)
    build_cache(teacher, tok, ids, str(tmp_path / "c"), topk=tok.size, shard_tokens=50)
    cache = TeacherCache(str(tmp_path / "c"))
    batch = next(SentenceBatches(ids, tok.bos, tok.eos, 7, seed=3).epoch(0))
    for trust in ("none", "prob", "rank", "margin"):
        s = KDConfig(alpha=0.7, tau=2.0, trust=trust, trust_k=3, impl="torch")
        live, p1, _ = KDObjective(s, teacher=teacher).loss(student, batch, None)
        cached, p2, _ = KDObjective(s, cache=cache).loss(student, batch, None)
        assert torch.allclose(live, cached, rtol=1e-5), trust
        assert p1["trust"] == pytest.approx(p2["trust"], rel=1e-5)


def test_cache_rows_match_teacher_predictions(tmp_path, corpus):
    tr, _ = corpus
    tok = WordVocab.build(sents(tr))
    ids = [tok.encode(s) for s in sents(tr)]
    teacher = tiny(tok.size, 10, 1).eval()
    for mode in ("sentence", "stream"):
        out = str(tmp_path / mode)
        build_cache(teacher, tok, ids, out, topk=4, mode=mode, batch_size=3, bptt=5,
                    shard_tokens=37)
        cache = TeacherCache(out)
        layout = (StreamBatches(ids, tok.bos, tok.eos, 3, 5) if mode == "stream"
                  else SentenceBatches(ids, tok.bos, tok.eos, 5, seed=9))
        state = None
        for b in layout.epoch(1):
            if b.reset or state is None:
                state = teacher.init_state(b.inputs.shape[0])
            with torch.no_grad():
                z, state = teacher(b.inputs, state)
            lp = torch.log_softmax(z, -1)
            real = b.targets >= 0
            ids_c, lps_c, tgt_c = cache.lookup(b.positions[real])
            want = lp[real].gather(1, b.targets[real].unsqueeze(1)).squeeze(1)
            assert torch.allclose(tgt_c, want, atol=1e-5)
            assert torch.allclose(lps_c, lp[real].topk(4, -1).values, atol=1e-5)


def test_cache_sharded_jobs_and_checks(tmp_path, corpus):
    tr, _ = corpus
    tok = WordVocab.build(sents(tr))
    ids = [tok.encode(s) for s in sents(tr)]
    teacher = tiny(tok.size).eval()
    out = str(tmp_path / "c")
    m = build_cache(teacher, tok, ids, out, topk=3, shard_tokens=40, job=(0, 2))
    assert m["missing_shards"] and not os.path.exists(os.path.join(out, "manifest.json"))
    with pytest.raises(InputError, match="manifest"):
        TeacherCache(out)
    m = build_cache(teacher, tok, ids, out, topk=3, shard_tokens=40, job=(1, 2))
    assert m["missing_shards"] == []
    cache = TeacherCache(out)
    cache.check(tok, ids, "sentence", 32, 35, 400)
    with pytest.raises(InputError, match="another training text"):
        cache.check(tok, ids[1:], "sentence", 32, 35, 400)
    with pytest.raises(InputError, match="mode"):
        cache.check(tok, ids, "stream", 32, 35, 400)


def test_distill_resume_matches_uninterrupted(tmp_path, corpus):
    tr, va = corpus
    tok = WordVocab.build(sents(tr))
    tr_ids = [tok.encode(s) for s in sents(tr)]
    va_ids = [tok.encode(s) for s in sents(va)]
    teacher = TeacherEnsemble([tiny(tok.size, 10, 1), tiny(tok.size, 14, 2)]).eval()
    for batching in ("sentence", "stream"):
        cfg = TrainConfig(batching=batching, batch_size=4, bptt=6, epochs=2, lr=0.5,
                          lr_schedule="constant")
        s = KDConfig(alpha=0.5, tau=2.0, trust="margin", impl="torch")

        def run(out, **kw):
            torch.manual_seed(0)
            model = LstmLM(LMConfig(vocab_size=tok.size, embed_dim=8, hidden_dim=8,
                                    num_layers=2, dropout=0.2))
            train(model, KDObjective(s, teacher=teacher), tok, tr_ids, va_ids, cfg, out,
                  seed=5, quiet=True, **kw)
            return model

        full = run(str(tmp_path / f"full-{batching}"))
        part = str(tmp_path / f"part-{batching}")
        run(part, max_steps=7)
        resumed = run(part, resume=True)
        for (k, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
            assert torch.equal(a, b), (batching, k)


def test_distill_cli_live_ensemble_and_cache(tmp_path, corpus, teacher_dir):
    tr, va = corpus
    out = str(tmp_path / "student")
    assert main(["distill", "--train", tr, "--valid", va, "--out", out,
                 "--teacher", teacher_dir, teacher_dir, "--epochs", "1", "--hidden-dim", "8",
                 "--embed-dim", "8", "--num-layers", "1", "--trust", "prob", "--alpha", "0.8",
                 "--quiet"]) == 0
    rows = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))
    assert {"hard", "soft", "trust"} <= set(rows[0])
    assert 0 < float(rows[0]["trust"]) <= 1
    model, tok, cfg = load_model(out)
    assert cfg["kind"] == "student" and cfg["kd"]["trust"] == "prob"
    assert tok.itos == load_model(teacher_dir)[1].itos
    cache = str(tmp_path / "cache")
    assert main(["cache-teacher", "--teacher", teacher_dir, "--text", tr, "--topk", "5",
                 "--out", cache, "--quiet"]) == 0
    out2 = str(tmp_path / "student2")
    assert main(["distill", "--train", tr, "--valid", va, "--out", out2, "--teacher-cache", cache,
                 "--epochs", "1", "--hidden-dim", "8", "--embed-dim", "8", "--quiet"]) == 0
    assert os.path.isfile(os.path.join(out2, "model.safetensors"))


def test_distill_cli_refuses_bad_input(tmp_path, corpus, teacher_dir, capsys):
    tr, va = corpus
    other = tmp_path / "other"
    other.mkdir()
    WordVocab(["<s>", "</s>", "<unk>", "zebra"]).save(other / "words.txt")
    args = ["distill", "--train", tr, "--valid", va, "--out", str(tmp_path / "s"),
            "--teacher", teacher_dir, "--epochs", "1", "--quiet"]
    assert main(args + ["--vocab", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differs from the teacher" in err[0]
    assert main(args + ["--alpha", "1.5"]) == 2
    assert "--alpha" in capsys.readouterr().err
    cache = str(tmp_path / "cache")
    assert main(["cache-teacher", "--teacher", teacher_dir, "--text", tr, "--topk", "5",
                 "--out", cache, "--quiet"]) == 0
    assert main(["distill", "--train", va, "--valid", va, "--out", str(tmp_path / "s3"),
                 "--teacher-cache", cache, "--epochs", "1", "--quiet"]) == 2
    assert "another training text" in capsys.readouterr().err
