"""The training checkpoint ``train_state.pt`` and the training position it carries.

One file per training folder, replaced atomically (a kill at any moment leaves
the previous or the new checkpoint, never a partial one).  Its payload is a dict
of tensors and plain data only:

* ``model``: the current weights (CPU tensors), ``optimizer``: its state dict;
* ``rng``: the torch RNG states (``cpu``, and ``cuda`` when available);
* ``position``: :class:`TrainPosition` as a plain dict (the keys of its fields,
  in field order), so the file needs no class to load (checkpoints of asr_kd
  0.1 before this name call it ``progress``; they are read the same way);
* ``ranks`` (data-parallel runs only): every rank's ``{"rng", "stream_state"}``
  in rank order; ``position["stream_state"]`` is then None;
* ``crc32``: :func:`content_crc32` of the rest, because ``torch.load`` does not
  check the zip's CRCs.

It is loaded with ``weights_only=True``, so a crafted file cannot run code.
It is written at every epoch end, every ``checkpoint_every`` steps, and before
stopping on a signal, on ``max_steps`` or on too many non-finite steps; a resume
needs the same world size.
"""
from __future__ import annotations

import json
import math
import pickle
import zlib
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from .errors import InputError, ResourceError, out_of_memory
from .fileio import atomic_write

CHECKPOINT_FILE = "train_state.pt"


def new_epoch_sums() -> dict:
    """Running sums of the epoch so far: loss and tokens of the finite steps, steps
    skipped, seconds; the objective's parts (e.g. ``hard``) are added under their name."""
    return {"loss": 0.0, "tokens": 0, "skipped": 0, "seconds": 0.0}


@dataclass
class TrainPosition:
    """Where a training run is: what a resume needs besides weights, optimizer and RNG.

    ``epoch`` (0-based) and ``step_in_epoch`` say which batch comes next;
    ``global_step`` counts optimizer steps (finite or skipped) over the run;
    ``lr`` is the current learning rate; ``best_ppl`` the best validation
    perplexity so far and ``bad_epochs`` the epochs since it last improved by the
    plateau threshold; ``history`` the per-epoch metric rows (metrics.csv);
    ``stream_state`` the recurrent state carried into the next batch in stream
    mode (CPU tensors, None otherwise or at an epoch boundary); ``epoch_sums``
    see :func:`new_epoch_sums`; ``world_size`` the number of data-parallel
    processes (a resume needs the same).
    """

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    lr: float = 0.0
    best_ppl: float = math.inf
    bad_epochs: int = 0
    history: list = field(default_factory=list)
    stream_state: Any = None
    epoch_sums: dict = field(default_factory=new_epoch_sums)
    world_size: int = 1

    def to_dict(self) -> dict:
        """The checkpoint's ``position`` dict: the fields in order, values not copied
        (the same objects: the saved file holds exactly the fields' values)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainPosition":
        """From a checkpoint's ``position`` dict; a key it lacks keeps its default
        (a checkpoint without ``world_size`` is of one process)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def rng_states() -> dict:
    """This process's torch RNG states: ``cpu``, and ``cuda`` (all devices) when available."""
    d = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        d["cuda"] = torch.cuda.get_rng_state_all()
    return d


def content_crc32(obj, crc: int = 0) -> int:
    """CRC32 over a checkpoint's content, in order: every tensor's dtype, shape and
    bytes and every plain value.  torch.load does not check the zip's CRCs, so a
    flipped bit in a tensor or a pickled number would otherwise load silently."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        crc = zlib.crc32(f"T{t.dtype}{tuple(t.shape)}".encode(), crc)
        return zlib.crc32(t.reshape(-1).view(torch.uint8).numpy(), crc)
    if isinstance(obj, dict):
        crc = zlib.crc32(f"D{len(obj)}".encode(), crc)
        for k, v in obj.items():
            crc = content_crc32(v, content_crc32(k, crc))
        return crc
    if isinstance(obj, (list, tuple)):
        crc = zlib.crc32(f"L{len(obj)}".encode(), crc)
        for v in obj:
            crc = content_crc32(v, crc)
        return crc
    return zlib.crc32(f"{type(obj).__name__}:{obj!r}".encode(), crc)


def write_checkpoint(path: str, model, opt, position: dict, ranks: list | None = None,
                     settings: dict | None = None) -> None:
    """Write the checkpoint atomically.  position: :meth:`TrainPosition.to_dict`;
    ranks: under DDP, every rank's {"rng", "stream_state"} (rank order); settings:
    what a resume must not change (:func:`check_settings`), as JSON text."""
    payload = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "optimizer": opt.state_dict(), "rng": rng_states(), "position": position}
    if ranks is not None:
        payload["ranks"] = ranks
    if settings is not None:
        payload["settings"] = json.dumps(settings, sort_keys=True)
    payload["crc32"] = content_crc32(payload)
    with atomic_write(path, "wb") as f:
        torch.save(payload, f)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else ""


def read_checkpoint(path: str) -> dict:
    """The checkpoint's payload: tensors and plain data only, checksum verified.

    ``weights_only=True`` makes torch refuse any pickled class or function, so a
    crafted train_state.pt cannot run code; that refusal is reported as such.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e) or "Weights only load failed" in str(e):
            raise InputError("refused: the checkpoint holds pickled code or objects, not just "
                             "tensors and plain data (not written by asr-kd, or tampered with); "
                             "it was not loaded", path) from None
        raise InputError(f"corrupt checkpoint ({type(e).__name__}: {_first_line(e)})",
                         path) from None
    except Exception as e:  # truncated zip, bad records, ...: a damaged file
        if out_of_memory(e):
            raise ResourceError(f"out of memory while reading the checkpoint ({type(e).__name__}"
                                f": {_first_line(e)}); the file was not found damaged",
                                path) from None
        raise InputError(f"corrupt or incompatible checkpoint ({type(e).__name__}: "
                         f"{_first_line(e)})", path) from None
    key = "position" if isinstance(payload, dict) and "position" in payload else "progress"
    if not isinstance(payload, dict) or not isinstance(payload.get(key), dict):
        raise InputError("corrupt or incompatible checkpoint (not a training state)", path)
    want = payload.pop("crc32", None)
    if want is not None and content_crc32(payload) != want:
        raise InputError("corrupt checkpoint: its content does not match the checksum written "
                         "with it (damaged on disk?)", path)
    payload["position"] = payload.pop(key)  # (the name of earlier checkpoints, see above)
    return payload


def _flat(d, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_settings(path: str, saved: str | None, settings: dict | None) -> None:
    """InputError when the checkpoint's settings (JSON text; None, a
    checkpoint without them: not checked) differ from this run's, naming each difference."""
    if saved is None or settings is None:
        return
    was, now = _flat(json.loads(saved)), _flat(json.loads(json.dumps(settings)))
    diff = [f"{k} {was.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(was) | set(now))
            if was.get(k) != now.get(k)]
    if diff:
        raise InputError(f"this run's settings differ from the checkpoint's ({'; '.join(diff)})"
                         ": --resume goes on with the same settings; give the original ones, "
                         "or train into a fresh --out", path)


def load_checkpoint(path: str, model, opt, device, rank: int = 0,
                    world: int = 1, settings: dict | None = None) -> TrainPosition:
    """Restore weights, optimizer and this rank's RNG from ``path``; the position to go on from.

    A checkpoint of another world size, model or optimizer, or (``settings``) one
    written with other settings, is an :class:`InputError`.
    """
    payload = read_checkpoint(path)
    check_settings(path, payload.get("settings"), settings)
    saved_world = payload["position"].get("world_size", 1)
    if saved_world != world:
        raise InputError(
            f"checkpoint written by a run of {saved_world} process(es), this run has {world}: "
            f"resume with the same world size (the data split, global batch and per-rank "
            f"states depend on it), or train into a fresh --out", path)
    try:
        model.load_state_dict(payload["model"])
        opt.load_state_dict(payload["optimizer"])
        position = payload["position"]
        rng = payload["rng"]
        if world > 1:
            rng = payload["ranks"][rank]["rng"]
            position["stream_state"] = payload["ranks"][rank]["stream_state"]
        torch.set_rng_state(rng["cpu"])
    except Exception as e:  # shapes, keys, types: a checkpoint of another model or setup
        raise InputError(f"corrupt or incompatible checkpoint ({type(e).__name__}: "
                         f"{_first_line(e)})", path) from None
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    model.to(device)
    return TrainPosition.from_dict(position)
