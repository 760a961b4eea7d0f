"""Data-parallel training (DDP over gloo, 2 CPU processes).

A run of W=2 ranks with per-rank batch B must follow the same loss curve (and
reach the same weights, within float tolerance) as one process with batch 2B,
in sentence and stream mode, for LM training and distillation (live teacher
and top-K cache); resume under DDP is exact with the same world size and is
refused with another one; `torchrun -m asr_kd.cli train-lm` works end to end.
"""
from __future__ import annotations

import csv
import json
import os
import random
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from asr_kd.cli import main
from asr_kd.config import TrainConfig
from asr_kd.distill import KDObjective
from asr_kd.ops import KDConfig
from asr_kd.errors import InputError
from asr_kd.models import LMConfig, LstmLM
from asr_kd.teacher_cache import TeacherCache, build_cache
from asr_kd.train import LMObjective, make_batches, train
from asr_kd.vocab import WordVocab

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = "the a one cat dog bird runs eats sleeps fast now again and".split()


def sentences(n, seed):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))) for _ in range(n)]


TRAIN_S, VALID_S = sentences(120, 0), sentences(30, 1)
TOK = WordVocab.build(TRAIN_S)
TRAIN_IDS = [TOK.encode(s) for s in TRAIN_S]
VALID_IDS = [TOK.encode(s) for s in VALID_S]

# name: (config overrides, objective kind); batch_size is per rank (x2 for one process)
CASES = {
    "lm-sentence": (dict(batching="sentence"), "lm"),
    "lm-stream": (dict(batching="stream", bptt=6), "lm"),
    "kd-sentence-seq": (dict(batching="sentence", grad_reduction="sequence"), "kd"),
    "kd-cache-stream": (dict(batching="stream", bptt=6), "cache"),
}


def cfg_for(case, batch_size, **kw):
    over, _ = CASES[case]
    base = dict(batch_size=batch_size, epochs=2, optimizer="adamw", lr=0.03,
                lr_schedule="constant", eval_batch_size=8, clip=1.0)
    base.update(over, **kw)
    return TrainConfig(**base)


def new_model(seed=1, dropout=0.0, h=12):
    torch.manual_seed(seed)
    return LstmLM(LMConfig(vocab_size=TOK.size, embed_dim=h, hidden_dim=h, num_layers=2,
                           dropout=dropout))


def teacher():
    torch.manual_seed(3)
    return LstmLM(LMConfig(vocab_size=TOK.size, embed_dim=10, hidden_dim=10)).eval()


def objective(case, cache_dir):
    kind = CASES[case][1]
    if kind == "lm":
        return LMObjective()
    s = KDConfig(alpha=0.6, tau=2.0, trust="prob", impl="torch")
    if kind == "kd":
        return KDObjective(s, teacher=teacher())
    return KDObjective(s, cache=TeacherCache(cache_dir))


def make_cache(root, global_batch):
    """Stream-mode cache for the global layout (batch_size = global batch)."""
    out = os.path.join(root, "cache")
    if not os.path.isfile(os.path.join(out, "manifest.json")):
        build_cache(teacher(), TOK, TRAIN_IDS, out, topk=5, mode="stream",
                    batch_size=global_batch, bptt=6, shard_tokens=200)
    return out


def run_case(case, root, out, batch_size, **kw):
    model = new_model(dropout=kw.pop("dropout", 0.0))
    cfg = cfg_for(case, batch_size, **kw.pop("cfg", {}))
    hist = train(model, objective(case, os.path.join(root, "cache")), TOK, TRAIN_IDS, VALID_IDS,
                 cfg, out, seed=5, quiet=True, **kw)
    return model, hist


# -- multi-process plumbing ---------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank, world, port, fn, args):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        fn(rank, *args)
    finally:
        dist.destroy_process_group()


def spawn(fn, *args, world=2):
    mp.spawn(_entry, args=(world, free_port(), fn, args), nprocs=world)


def _equivalence_worker(rank, root):
    for case in CASES:
        model, hist = run_case(case, root, os.path.join(root, f"ddp-{case}"), 4)
        if rank == 0:
            torch.save({"hist": hist, "weights": model.state_dict()},
                       os.path.join(root, f"ddp-{case}.pt"))


def _close(a, b, rel=1e-5):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-8)


@pytest.mark.slow  # two spawned training processes
def test_ddp_matches_single_process_with_the_global_batch(tmp_path):
    root = str(tmp_path)
    make_cache(root, 8)
    spawn(_equivalence_worker, root)
    for case in CASES:
        model, hist = run_case(case, root, str(tmp_path / f"single-{case}"), 8)
        ddp = torch.load(tmp_path / f"ddp-{case}.pt", weights_only=True)
        assert len(hist) == len(ddp["hist"]) == 2
        for a, b in zip(hist, ddp["hist"]):
            assert a["tokens"] == b["tokens"] and a["step"] == b["step"], case
            for k in ("train_loss", "valid_ppl", "hard", "soft", "trust"):
                if k in a:
                    assert _close(a[k], b[k]), (case, k, a[k], b[k])
        for k, w in model.state_dict().items():
            assert torch.allclose(w, ddp["weights"][k], rtol=1e-4, atol=1e-5), (case, k)
        # rank 0 wrote the model folder and metrics; config records the world size
        d = tmp_path / f"ddp-{case}"
        conf = json.loads((d / "config.json").read_text())
        assert conf["world_size"] == 2 and conf["global_batch_size"] == 8
        assert len(list(csv.DictReader(open(d / "metrics.csv")))) == 2


def test_data_shares_partition_the_global_batch():
    for batching in ("sentence", "stream"):
        cfg = cfg_for("lm-" + batching, 3)
        one = make_batches(TRAIN_IDS, TOK, cfg_for("lm-" + batching, 6), 5, train=True)
        ranks = [make_batches(TRAIN_IDS, TOK, cfg, 5, train=True, rank=r, world=2)
                 for r in range(2)]
        assert len(ranks[0]) == len(ranks[1]) == len(one)
        for b, b0, b1 in zip(one.epoch(1), ranks[0].epoch(1), ranks[1].epoch(1)):
            pos = sorted(b.positions[b.positions >= 0].tolist())
            got = sorted(b0.positions[b0.positions >= 0].tolist()
                         + b1.positions[b1.positions >= 0].tolist())
            assert pos == got
    # training drops a global tail batch smaller than the world; evaluation keeps it
    cfg = cfg_for("lm-sentence", 4)
    ids = TRAIN_IDS[:17]                       # 17 = 2 x 8 + 1
    tr = [make_batches(ids, TOK, cfg, 5, train=True, rank=r, world=2) for r in range(2)]
    assert len(tr[0]) == 2 == len(list(tr[0].epoch(0))) == len(list(tr[1].epoch(0)))
    ev = [make_batches(ids, TOK, TrainConfig(eval_batch_size=4), 5, train=False, rank=r, world=2)
          for r in range(2)]
    assert sum(int((b.targets >= 0).sum()) for e in ev for b in e.epoch(0)) == \
        sum(len(s) + 1 for s in ids)


def _resume_worker(rank, root):
    results = {}
    for case in ("lm-stream", "lm-sentence"):
        full, _ = run_case(case, root, os.path.join(root, f"full-{case}"), 4, dropout=0.3)
        part = os.path.join(root, f"part-{case}")
        run_case(case, root, part, 4, dropout=0.3, max_steps=5)
        resumed, _ = run_case(case, root, part, 4, dropout=0.3, resume=True)
        results[case] = all(torch.equal(a, b) for a, b in
                            zip(full.state_dict().values(), resumed.state_dict().values()))
    try:                                   # a single-process checkpoint is refused
        run_case("lm-stream", root, os.path.join(root, "single"), 4, resume=True)
        results["refused"] = ""
    except InputError as e:
        results["refused"] = str(e)
    if rank == 0:
        torch.save(results, os.path.join(root, "resume.pt"))


@pytest.mark.slow  # spawned training processes
def test_ddp_resume_is_exact_and_world_size_is_checked(tmp_path):
    root = str(tmp_path)
    run_case("lm-stream", root, str(tmp_path / "single"), 8, max_steps=2)
    spawn(_resume_worker, root)
    res = torch.load(tmp_path / "resume.pt", weights_only=True)
    assert res["lm-stream"] and res["lm-sentence"]
    assert "written by a run of 1 process(es), this run has 2" in res["refused"]
    with pytest.raises(InputError, match="written by a run of 2 process.*this run has 1.*"
                       "same world size"):
        run_case("lm-stream", root, str(tmp_path / "part-lm-stream"), 8, resume=True)


@pytest.mark.slow  # torchrun
def test_torchrun_train_lm_cli_matches_one_process(tmp_path):
    tr, va = tmp_path / "train.txt", tmp_path / "valid.txt"
    tr.write_text("\n".join(TRAIN_S) + "\n")
    va.write_text("\n".join(VALID_S) + "\n")
    args = ["train-lm", "--train", str(tr), "--valid", str(va), "--epochs", "2",
            "--hidden-dim", "12", "--embed-dim", "12", "--num-layers", "1", "--optimizer",
            "adamw", "--lr", "0.03", "--lr-schedule", "constant", "--device", "cpu", "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node=2", "-m", "asr_kd.cli", *args,
                        "--out", str(tmp_path / "ddp"), "--batch-size", "4"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("done: 2 epochs") == 1          # rank 0 only
    assert main(args + ["--out", str(tmp_path / "one"), "--batch-size", "8"]) == 0
    rows = [list(csv.DictReader(open(tmp_path / d / "metrics.csv"))) for d in ("ddp", "one")]
    for a, b in zip(*rows):
        assert a["tokens"] == b["tokens"]
        for k in ("train_loss", "valid_ppl"):
            assert _close(float(a[k]), float(b[k]), 1e-4), (k, a[k], b[k])
    assert (tmp_path / "ddp" / "train.log").is_file()
    from asr_kd.modeldir import load_model
    m_ddp, m_one = load_model(str(tmp_path / "ddp"))[0], load_model(str(tmp_path / "one"))[0]
    for (k, a), b in zip(m_ddp.state_dict().items(), m_one.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), k
