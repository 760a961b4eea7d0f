"""Claims that survive a rerun: the same command, seed and thread count give the same
numbers; ``--threads`` sets the process's thread pool and leaves no trace afterwards."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from asr_kd.cli import main
from test_cli_lm import corpus  # tests/ is on sys.path, as for test_consensus

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("repro")
    (d / "train.txt").write_text("\n".join(corpus(100, 0)) + "\n", encoding="utf-8")
    (d / "valid.txt").write_text("\n".join(corpus(20, 1)) + "\n", encoding="utf-8")
    (d / "conf.yaml").write_text("embed_dim: 16\nhidden_dim: 16\nnum_layers: 1\nbatch_size: 8\n"
                                 "optimizer: adamw\nlr: 0.01\nepochs: 2\ndropout: 0.3\n")
    return d


def train(d, out, seed, *extra):
    assert main(["train-lm", "--config", str(d / "conf.yaml"), "--train", str(d / "train.txt"),
                 "--valid", str(d / "valid.txt"), "--out", str(out), "--quiet", "--device",
                 "cpu", "--seed", str(seed), "--threads", "1", *extra]) == 0
    return (out / "model.safetensors").read_bytes()


def test_same_seed_and_threads_same_model_and_numbers(data, tmp_path, capsys):
    a = train(data, tmp_path / "a", 3)
    b = train(data, tmp_path / "b", 3)
    assert a == b  # bit for bit
    assert train(data, tmp_path / "c", 4) != a  # the seed matters (dropout, init, order)
    for name in ("a", "b"):
        assert main(["distill", "--config", str(data / "conf.yaml"), "--train",
                     str(data / "train.txt"), "--valid", str(data / "valid.txt"), "--out",
                     str(tmp_path / f"s{name}"), "--teacher", str(tmp_path / "a"), "--quiet",
                     "--device", "cpu", "--seed", "7", "--threads", "1", "--trust",
                     "margin"]) == 0
    assert ((tmp_path / "sa" / "model.safetensors").read_bytes()
            == (tmp_path / "sb" / "model.safetensors").read_bytes())
    capsys.readouterr()
    ppl = []
    for name in ("sa", "sb"):
        assert main(["ppl", "--model", str(tmp_path / name), "--text", str(data / "valid.txt"),
                     "--json", "--threads", "1"]) == 0
        ppl.append(json.loads(capsys.readouterr().out))
    assert ppl[0] == ppl[1]


def test_threads_option_sets_the_pool_and_is_undone(data, tmp_path, capsys):
    before_env = os.environ.get("OMP_NUM_THREADS")
    before = torch.get_num_threads()
    seen = {}

    import asr_kd.cli.ppl as ppl_cli
    real = ppl_cli.run

    def spy(args):
        seen["threads"] = torch.get_num_threads()
        seen["env"] = os.environ.get("OMP_NUM_THREADS")
        return real(args)

    try:  # main() builds its parser anew, binding the module's run at that time
        ppl_cli.run = spy
        assert main(["ppl", "--model", str(tmp_path / "x"), "--text", "missing",
                     "--threads", "1"]) in (0, 2)
    finally:
        ppl_cli.run = real
    assert seen == {"threads": 1, "env": "1"}
    assert torch.get_num_threads() == before
    assert os.environ.get("OMP_NUM_THREADS") == before_env


def test_threads_reach_a_subprocess_and_default_to_the_affinity(data, tmp_path):
    """`asr-kd rescore --stats-out` records the threads it ran with: --threads N, else
    OMP_NUM_THREADS, else the cores of the process's CPU set (taskset)."""
    model = tmp_path / "m"
    train(data, model, 1)
    nb = tmp_path / "n.jsonl"
    nb.write_text(json.dumps({"utt": "u1", "hyps": [{"text": "the cat runs"},
                                                     {"text": "a dog"}]}) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")

    def threads(*extra, prefix=()):
        stats = tmp_path / "s.json"
        subprocess.run([*prefix, sys.executable, "-m", "asr_kd", "rescore", "--nbest", str(nb),
                        "--model", str(model), "--name", "x", "--out", str(tmp_path / "o.jsonl"),
                        "--stats-out", str(stats), "--quiet", "--device", "cpu", *extra],
                       env=env, check=True, capture_output=True)
        return json.loads(stats.read_text())["threads"]

    if len(os.sched_getaffinity(0)) >= 2 and shutil.which("taskset"):
        assert threads(prefix=("taskset", "-c", "0")) == 1  # no option, no env: the CPU set
    else:
        assert threads("--threads", "1") == 1
