"""TrainProgress: the checkpoint's "progress" stays a plain dict with the keys it always had."""
from __future__ import annotations

import math
import os

import pytest
import torch

from asr_kd.checkpoint import STATE_FILE, TrainProgress, read_checkpoint
from asr_kd.train import LMObjective, train

from test_train import TOK, TRAIN_IDS, VALID_IDS, new_model, tcfg

pytestmark = pytest.mark.usefixtures("one_thread")

KEYS = ["epoch", "step_in_epoch", "global_step", "lr", "best_ppl", "bad_epochs", "history",
        "stream_state", "epoch_sums", "world_size"]


def test_dict_round_trip_keeps_keys_order_and_objects():
    p = TrainProgress(epoch=2, step_in_epoch=5, global_step=45, lr=0.25, best_ppl=12.5,
                      bad_epochs=1, history=[{"epoch": 1}], stream_state=(torch.zeros(2),),
                      world_size=2)
    d = p.to_dict()
    assert list(d) == KEYS
    assert d["stream_state"] is p.stream_state and d["history"] is p.history
    assert TrainProgress.from_dict(d) == p
    fresh = TrainProgress()
    assert fresh.best_ppl == math.inf and fresh.epoch_sums == {
        "loss": 0.0, "tokens": 0, "skipped": 0, "seconds": 0.0}
    assert fresh.epoch_sums is not TrainProgress().epoch_sums  # no shared default


def test_a_checkpoint_without_world_size_is_of_one_process():
    d = TrainProgress(lr=0.5).to_dict()
    del d["world_size"]
    assert TrainProgress.from_dict(d).world_size == 1


def test_checkpoint_progress_is_a_plain_dict(tmp_path):
    cfg = tcfg(epochs=2, batching="stream")
    hist = train(new_model(), LMObjective(), TOK, TRAIN_IDS, VALID_IDS, cfg, str(tmp_path),
                 seed=7, quiet=True, max_steps=3)
    assert hist == []
    progress = read_checkpoint(os.path.join(tmp_path, STATE_FILE))["progress"]
    assert type(progress) is dict and list(progress) == KEYS
    assert (progress["epoch"], progress["step_in_epoch"], progress["global_step"]) == (0, 3, 3)
    assert progress["lr"] == cfg.lr and progress["world_size"] == 1
    assert all(isinstance(t, torch.Tensor) for t in progress["stream_state"])
