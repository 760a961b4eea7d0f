"""asr_kd.jobs: job split, round-robin storage shards, the torchrun epilogue; asr_kd.sharding's
shard file names."""
import pytest

from asr_kd.errors import InputError
from asr_kd.jobs import finish_under_torchrun, job_shard, round_robin, split_by_torchrun
from asr_kd.sharding import done_path, shard_path


def test_job_shard_from_the_option_or_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert job_shard(None) == (0, 1) and not split_by_torchrun(None)
    assert job_shard("2/4") == (2, 4)
    for bad in ("2", "a/b", "4/4", "0/0"):
        with pytest.raises(InputError, match="--shard"):
            job_shard(bad)
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "1")
    assert job_shard(None) == (1, 3) and split_by_torchrun(None)
    assert job_shard("0/2") == (0, 2) and not split_by_torchrun("0/2")   # the option wins


def test_round_robin_gives_every_storage_shard_to_one_job():
    jobs = [round_robin(10, (i, 3)) for i in range(3)]
    assert jobs[1] == [1, 4, 7]
    assert sorted(s for j in jobs for s in j) == list(range(10))


def test_shard_file_names():
    assert shard_path("x/dev.lm.jsonl.gz", 1, 4) == "x/dev.lm.shard-1-of-4.jsonl.gz"
    assert shard_path("dev.jsonl", 0, 2) == "dev.shard-0-of-2.jsonl"
    assert done_path("x/dev.lm.jsonl.gz", 1, 4) == "x/dev.lm.shard-1-of-4.done"


def test_finish_under_torchrun_in_one_process_merges_once(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    calls = []
    assert finish_under_torchrun(lambda: calls.append(1) or 7) == 7 and calls == [1]


def test_cache_job_computes_its_round_robin_storage_shards(tmp_path):
    import os

    import torch

    from asr_kd.models import LMConfig, LstmLM
    from asr_kd.teacher_cache import build_cache
    from asr_kd.vocab import WordVocab

    sents = [f"a b c {w} d" for w in "e f g h i j k l".split()]
    tok = WordVocab.build(sents)
    ids = [tok.encode(s) for s in sents]
    torch.manual_seed(0)
    teacher = LstmLM(LMConfig(vocab_size=tok.size, embed_dim=4, hidden_dim=4)).eval()
    out = str(tmp_path / "c")
    m = build_cache(teacher, tok, ids, out, topk=2, shard_tokens=10, job=(1, 2))
    done = [s for s in range(m["num_shards"])
            if os.path.isfile(os.path.join(out, f"shard-{s:05d}", "done.json"))]
    assert m["num_shards"] >= 4 and done == round_robin(m["num_shards"], (1, 2))
    assert m["missing_shards"] == round_robin(m["num_shards"], (0, 2))
