"""TrainPosition: the checkpoint's "position" stays a plain dict with the keys it always had;
a checkpoint that calls it "progress" (earlier asr_kd 0.1) is read the same way."""
from __future__ import annotations

import math
import os

import pytest
import torch

from asr_kd.checkpoint import CHECKPOINT_FILE, TrainPosition, read_checkpoint
from asr_kd.train import LMObjective, train

from test_train import TOK, TRAIN_IDS, VALID_IDS, new_model, tcfg

pytestmark = pytest.mark.usefixtures("one_thread")

KEYS = ["epoch", "step_in_epoch", "global_step", "lr", "best_ppl", "bad_epochs", "history",
        "stream_state", "epoch_sums", "world_size"]


def test_dict_round_trip_keeps_keys_order_and_objects():
    p = TrainPosition(epoch=2, step_in_epoch=5, global_step=45, lr=0.25, best_ppl=12.5,
                      bad_epochs=1, history=[{"epoch": 1}], stream_state=(torch.zeros(2),),
                      world_size=2)
    d = p.to_dict()
    assert list(d) == KEYS
    assert d["stream_state"] is p.stream_state and d["history"] is p.history
    assert TrainPosition.from_dict(d) == p
    fresh = TrainPosition()
    assert fresh.best_ppl == math.inf and fresh.epoch_sums == {
        "loss": 0.0, "tokens": 0, "skipped": 0, "seconds": 0.0}
    assert fresh.epoch_sums is not TrainPosition().epoch_sums  # no shared default


def test_a_checkpoint_without_world_size_is_of_one_process():
    d = TrainPosition(lr=0.5).to_dict()
    del d["world_size"]
    assert TrainPosition.from_dict(d).world_size == 1


def test_checkpoint_position_is_a_plain_dict(tmp_path):
    cfg = tcfg(epochs=2, batching="stream")
    hist = train(new_model(), LMObjective(), TOK, TRAIN_IDS, VALID_IDS, cfg, str(tmp_path),
                 seed=7, quiet=True, max_steps=3)
    assert hist == []
    path = os.path.join(tmp_path, CHECKPOINT_FILE)
    assert "position" in torch.load(path, weights_only=True)
    position = read_checkpoint(path)["position"]
    assert type(position) is dict and list(position) == KEYS
    assert (position["epoch"], position["step_in_epoch"], position["global_step"]) == (0, 3, 3)
    assert position["lr"] == cfg.lr and position["world_size"] == 1
    assert all(isinstance(t, torch.Tensor) for t in position["stream_state"])


def test_a_checkpoint_calling_it_progress_resumes_the_same(tmp_path):
    """A checkpoint written before the rename (key "progress", its CRC over that) resumes to
    the same weights as one with the current key."""
    from asr_kd.checkpoint import content_crc32

    cfg = tcfg(epochs=2, batching="stream")
    for d in ("a", "b"):
        train(new_model(), LMObjective(), TOK, TRAIN_IDS, VALID_IDS, cfg, str(tmp_path / d),
              seed=7, quiet=True, max_steps=3)
    path = str(tmp_path / "b" / CHECKPOINT_FILE)
    old = torch.load(path, weights_only=True)
    old.pop("crc32")
    old = {("progress" if k == "position" else k): v for k, v in old.items()}
    old["crc32"] = content_crc32(old)
    torch.save(old, path)
    assert read_checkpoint(path)["position"]["global_step"] == 3
    hists = [train(new_model(), LMObjective(), TOK, TRAIN_IDS, VALID_IDS, cfg,
                   str(tmp_path / d), seed=7, quiet=True, resume=True) for d in ("a", "b")]
    assert len(hists[0]) == 2
    for key in ("train_ppl", "valid_ppl", "step", "lr"):
        assert [r[key] for r in hists[0]] == [r[key] for r in hists[1]]
