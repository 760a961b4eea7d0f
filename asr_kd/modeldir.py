"""Model folders: ``config.json`` + ``model.safetensors`` + ``words.txt``/``spm.model``.

Loading never unpickles anything: weights come from safetensors and the
config is JSON.  Every inconsistency (missing file, corrupt or truncated
weights, wrong shapes, vocabulary size differing from the config) raises an
:class:`InputError` naming the file.
"""
from __future__ import annotations

import json
import os
import shutil

import torch

from .errors import InputError
from .fileio import atomic_write
from .models import LMConfig, LstmLM
from .vocab import SpmTokenizer, WordVocab

FORMAT = "asr_kd-lstm-lm"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def tokenizer_files(tokenizer) -> str:
    return "spm.model" if tokenizer.kind == "spm" else "words.txt"


def save_tokenizer(tokenizer, out_dir: str) -> None:
    """Copy/write the tokenizer into ``out_dir`` (words.txt or spm.model)."""
    dst = os.path.join(out_dir, tokenizer_files(tokenizer))
    if tokenizer.kind == "spm":
        if os.path.abspath(tokenizer.path) != os.path.abspath(dst):
            with open(tokenizer.path, "rb") as src, atomic_write(dst, "wb") as f:
                shutil.copyfileobj(src, f)
    else:
        tokenizer.save(dst)


def _state_for_save(model: LstmLM) -> dict[str, torch.Tensor]:
    sd = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    if model.cfg.tied:
        sd.pop("out.weight")  # shared with embed.weight; safetensors refuses aliases
    return sd


def save_model(model: LstmLM, tokenizer, out_dir: str, extra: dict | None = None) -> dict:
    """Write a complete model folder; returns the config dict written."""
    from safetensors.torch import save as st_save

    os.makedirs(out_dir, exist_ok=True)
    save_tokenizer(tokenizer, out_dir)
    blob = st_save(_state_for_save(model), metadata={"format": FORMAT})
    with atomic_write(os.path.join(out_dir, WEIGHTS), "wb") as f:
        f.write(blob)
    cfg = {
        "format": FORMAT,
        "version": 1,
        "model": model.cfg.to_dict(),
        "tokenizer": {"kind": tokenizer.kind, "file": tokenizer_files(tokenizer),
                      "size": tokenizer.size},
        "num_params": model.num_params(),
        "size_mb": round(len(blob) / 1e6, 3),
    }
    cfg.update(extra or {})
    with atomic_write(os.path.join(out_dir, CONFIG)) as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    return cfg


def read_config(model_dir: str) -> dict:
    path = os.path.join(model_dir, CONFIG)
    if not os.path.isdir(model_dir):
        raise InputError("no such model folder", model_dir)
    if not os.path.isfile(path):
        raise InputError("not a model folder (no config.json)", model_dir)
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"corrupt config ({e})", path) from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise InputError(f"not an asr_kd model config (format != {FORMAT})", path)
    return cfg


def load_tokenizer_for(model_dir: str, cfg: dict):
    tok = cfg.get("tokenizer", {})
    kind = tok.get("kind", "words")
    path = os.path.join(model_dir, tok.get("file", "words.txt"))
    return SpmTokenizer(path) if kind == "spm" else WordVocab.load(path)


def load_model(model_dir: str, device: str | torch.device = "cpu"):
    """Load ``(model, tokenizer, config)`` from a model folder; model in eval mode."""
    from safetensors.torch import load_file

    model_dir = os.fspath(model_dir)
    cfg = read_config(model_dir)
    try:
        lm_cfg = LMConfig.from_dict(cfg["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"bad model section ({e})", os.path.join(model_dir, CONFIG)) from None
    tokenizer = load_tokenizer_for(model_dir, cfg)
    if tokenizer.size != lm_cfg.vocab_size:
        tok_file = os.path.join(model_dir, cfg.get("tokenizer", {}).get("file", "words.txt"))
        raise InputError(f"tokenizer has {tokenizer.size} ids but the model was built for "
                         f"{lm_cfg.vocab_size}", tok_file)
    wpath = os.path.join(model_dir, WEIGHTS)
    if not os.path.isfile(wpath):
        raise InputError("missing weights file", wpath)
    try:
        sd = load_file(wpath)
    except Exception as e:  # safetensors raises its own error types across versions
        raise InputError(f"corrupt or truncated weights ({e})", wpath) from None
    model = LstmLM(lm_cfg)
    expected = _state_for_save(model)
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    if missing or unexpected:
        raise InputError(f"weights do not match the config (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})", wpath)
    for k, v in expected.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise InputError(f"tensor {k} has shape {tuple(sd[k].shape)}, config says "
                             f"{tuple(v.shape)}", wpath)
        if not torch.isfinite(sd[k]).all():
            raise InputError(f"tensor {k} holds NaN or inf", wpath)
    model.load_state_dict(sd, strict=False)
    model.to(device).eval()
    return model, tokenizer, cfg


def same_tokenizer(a, b) -> bool:
    """True when two tokenizers map text to the same ids."""
    if a.kind != b.kind or a.size != b.size:
        return False
    if a.kind == "spm":
        with open(a.path, "rb") as fa, open(b.path, "rb") as fb:
            return fa.read() == fb.read()
    return a.itos == b.itos


def load_models(model_dirs: list[str], device="cpu", combine: str = "prob"):
    """One model, or a TeacherEnsemble of several sharing one tokenizer: (model, tokenizer)."""
    from .models import TeacherEnsemble

    loaded = [load_model(d, device) for d in model_dirs]
    tok = loaded[0][1]
    for d, (_, t, _) in zip(model_dirs[1:], loaded[1:]):
        if not same_tokenizer(tok, t):
            raise InputError(f"vocabulary differs from {model_dirs[0]}'s; ensemble members "
                             "must share one tokenizer", d)
    if len(loaded) == 1:
        return loaded[0][0], tok
    return TeacherEnsemble([m for m, _, _ in loaded], combine).to(device).eval(), tok
