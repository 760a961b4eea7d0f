"""Model folders: ``config.json`` + ``model.safetensors`` + ``words.txt``/``spm.model``.

Loading never unpickles anything: weights come from safetensors and the
config is JSON.  Every inconsistency (missing file, corrupt or truncated
weights, wrong shapes, vocabulary size differing from the config) raises an
:class:`InputError` naming the file.

Corruption that would still parse (flipped bits in tensor data, a word of
``words.txt`` changed) is caught by CRC32 checksums written at save time: of
the tensors, in the safetensors metadata; of the tokenizer file, in
``config.json`` (``"checksums": {"words.txt": ...}``).  A folder without
checksums loads unchecked.

A folder is written as one :class:`~asr_kd.fileio.FileSet`: a failed write
(disk full) leaves the earlier model in place, whole.

Format ``asr_kd-lstm-lm``:

* ``config.json``: ``format``, ``version`` (1), ``model`` (the ``LMConfig``),
  ``tokenizer`` (``kind`` words|spm, ``file``, ``size``), ``checksums``,
  ``num_params``, ``size_mb``; then what training adds: ``kind`` (``lm`` or
  ``student``), ``train`` (the ``TrainConfig``), ``seed``, ``train_text``,
  ``best_epoch``, ``valid_ppl``, under DDP ``world_size`` and ``global_batch_size``;
  a student also ``kd`` (the effective ``KDConfig``, every field) and ``teacher``
  (the teacher folders, or the cache folder);
* ``model.safetensors``: the best weights by validation perplexity, float32; a
  tied output weight is stored once (as the embedding); metadata
  ``{"format": ..., "crc32": ...}`` with sorted keys, so the bytes are reproducible;
* ``words.txt`` (Kaldi layout, ``word id``) or ``spm.model``;
* beside them, from training: ``train_state.pt`` (:mod:`asr_kd.checkpoint`),
  ``metrics.csv`` (:mod:`asr_kd.train`) and the log (``train.log`` or ``distill.log``).
"""
from __future__ import annotations

import json
import os
import shutil
import zlib

import torch

from .checkpoint import CHECKPOINT_FILE
from .errors import InputError, ResourceError, out_of_memory
from .fileio import FileSet, read_json
from .models import LMConfig, LstmLM
from .vocab import SpmTokenizer, WordVocab

FORMAT = "asr_kd-lstm-lm"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def tokenizer_files(tokenizer) -> str:
    return "spm.model" if tokenizer.kind == "spm" else "words.txt"


def save_tokenizer(tokenizer, out_dir: str, files: FileSet | None = None) -> None:
    """Copy/write the tokenizer into ``out_dir`` (words.txt or spm.model).

    With ``files`` the file is staged there (committed with the rest of a model
    folder); without, it is put in place at once.
    """
    dst = os.path.join(out_dir, tokenizer_files(tokenizer))
    if files is None:
        with FileSet() as one:
            save_tokenizer(tokenizer, out_dir, one)
        return
    if tokenizer.kind == "spm":
        if os.path.abspath(tokenizer.path) != os.path.abspath(dst):
            with open(tokenizer.path, "rb") as src, files.open(dst, "wb") as f:
                shutil.copyfileobj(src, f)
    else:
        files.add(dst, tokenizer.save)


def _state_for_save(model: LstmLM) -> dict[str, torch.Tensor]:
    sd = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    if model.cfg.tied:
        sd.pop("out.weight")  # shared with embed.weight; safetensors refuses aliases
    return sd


def tensors_crc32(tensors: dict[str, torch.Tensor]) -> str:
    """CRC32 (8 hex digits) over names, dtypes, shapes and bytes, in name order."""
    crc = 0
    for k in sorted(tensors):
        t = tensors[k].detach().cpu().contiguous()
        crc = zlib.crc32(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode(), crc)
        crc = zlib.crc32(t.reshape(-1).view(torch.uint8).numpy(), crc)
    return f"{crc:08x}"


def file_crc32(path: str) -> str:
    crc = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"


def _sorted_metadata(blob: bytes) -> bytes:
    """The safetensors file with its metadata keys in sorted order.

    safetensors writes metadata from a hash map, in an order that changes from
    process to process; sorting keeps a saved model byte-identical across runs.
    """
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data stays 8-byte aligned, as safetensors pads it
    return len(text).to_bytes(8, "little") + text + blob[8 + n:]


def save_model(model: LstmLM, tokenizer, out_dir: str, extra: dict | None = None) -> dict:
    """Write a complete model folder; returns the config dict written.

    The tokenizer, weights and config are staged and then renamed together,
    config last, so a failed write changes nothing in ``out_dir``.
    """
    from safetensors.torch import save as st_save

    os.makedirs(out_dir, exist_ok=True)
    sd = _state_for_save(model)
    blob = _sorted_metadata(st_save(sd, metadata={"format": FORMAT, "crc32": tensors_crc32(sd)}))
    with FileSet() as files:
        save_tokenizer(tokenizer, out_dir, files)
        tok_name = tokenizer_files(tokenizer)
        tok_crc = file_crc32(files.staged_path(os.path.join(out_dir, tok_name)))
        with files.open(os.path.join(out_dir, WEIGHTS), "wb") as f:
            f.write(blob)
        cfg = {
            "format": FORMAT,
            "version": 1,
            "model": model.cfg.to_dict(),
            "tokenizer": {"kind": tokenizer.kind, "file": tokenizer_files(tokenizer),
                          "size": tokenizer.size},
            "checksums": {tok_name: tok_crc},
            "num_params": model.num_params(),
            "size_mb": round(len(blob) / 1e6, 3),
        }
        cfg.update(extra or {})
        with files.open(os.path.join(out_dir, CONFIG)) as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
    return cfg


def folder_kind(folder: str) -> str | None:
    """What kind of model ``folder`` holds: ``"trained"`` (``asr-kd train-lm`` /
    ``distill``: a config.json of this format, weights or a training checkpoint),
    ``"exported"`` (``asr-kd export``: an exported config.json or ``model.onnx``),
    or None (no such folder, or no model in it)."""
    from .export import EXPORT_FORMAT, ONNX_FILE

    if not os.path.isdir(folder):
        return None
    cfg = os.path.join(folder, CONFIG)
    if os.path.isfile(cfg):
        try:
            fmt = read_json(cfg, "config").get("format")
        except InputError:
            fmt = None
        if fmt == FORMAT:
            return "trained"
        if fmt == EXPORT_FORMAT:
            return "exported"
    if any(os.path.exists(os.path.join(folder, f)) for f in (WEIGHTS, CHECKPOINT_FILE)):
        return "trained"
    if os.path.exists(os.path.join(folder, ONNX_FILE)):
        return "exported"
    return None


_KINDS = {"trained": "a trained model (asr-kd train-lm / distill)",
          "exported": "an exported model (asr-kd export)"}


def check_out_kind(out_dir: str, kind: str, command: str) -> None:
    """Refuse ``--out`` ``out_dir`` when it holds a model of another kind than ``kind``
    (``"trained"`` or ``"exported"``): writing there would replace its config.json
    and tokenizer and leave its weights behind, belonging to nothing."""
    have = folder_kind(out_dir)
    if have is not None and have != kind:
        lost = "weights" if have == "trained" else "ONNX graph"
        raise InputError(f"--out holds {_KINDS[have]}; {command} would replace its config.json "
                         f"and tokenizer and orphan its {lost}: give a new folder", out_dir)


def read_config(model_dir: str) -> dict:
    path = os.path.join(model_dir, CONFIG)
    if not os.path.isdir(model_dir):
        raise InputError("no such model folder", model_dir)
    if not os.path.isfile(path):
        raise InputError("not a model folder (no config.json)", model_dir)
    cfg = read_json(path, "config", not_object=f"not an asr_kd model config (format != {FORMAT})")
    if cfg.get("format") != FORMAT:
        raise InputError(f"not an asr_kd model config (format != {FORMAT})", path)
    return cfg


def _tokenizer_section(model_dir: str, cfg: dict) -> dict:
    """The config's tokenizer entry, checked: kind words|spm and a plain file name."""
    tok = cfg.get("tokenizer", {})
    kind = tok.get("kind", "words") if isinstance(tok, dict) else None
    name = tok.get("file", "words.txt") if isinstance(tok, dict) else None
    if kind not in ("words", "spm") or not isinstance(name, str) or os.path.basename(name) != name:
        raise InputError(f"bad tokenizer section {tok!r}", os.path.join(model_dir, CONFIG))
    return dict(tok, kind=kind, file=name)


def load_tokenizer_for(model_dir: str, cfg: dict):
    tok = _tokenizer_section(model_dir, cfg)
    path = os.path.join(model_dir, tok["file"])
    return SpmTokenizer(path) if tok["kind"] == "spm" else WordVocab.load(path)


def _check_tokenizer(model_dir: str, cfg: dict, tokenizer, vocab_size: int) -> None:
    """The tokenizer file is the one saved with the model: size, then checksum."""
    tok = _tokenizer_section(model_dir, cfg)
    path = os.path.join(model_dir, tok["file"])
    if tokenizer.size != vocab_size:
        raise InputError(f"tokenizer has {tokenizer.size} ids but the model was built for "
                         f"{vocab_size}", path)
    want = cfg.get("checksums", {}).get(tok["file"]) if isinstance(cfg.get("checksums"), dict) \
        else None
    if want is not None and file_crc32(path) != want:
        raise InputError(f"checksum differs from the one in {CONFIG}: the file was changed or "
                         "corrupted after the model was saved", path)


def _read_weights(wpath: str) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, checked against its CRC32 metadata when present."""
    from safetensors import safe_open

    if not os.path.isfile(wpath):
        raise InputError("missing weights file", wpath)
    try:
        with safe_open(wpath, framework="pt") as f:
            meta = f.metadata() or {}
            sd = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types across versions
        msg = " ".join(str(e).split())[:200]
        if out_of_memory(e):
            raise ResourceError(f"out of memory while reading the weights ({msg or 'MemoryError'}"
                                "); the file was not found damaged", wpath) from None
        raise InputError(f"corrupt or truncated weights ({msg})", wpath) from None
    _check_metadata(meta, wpath)
    if "crc32" in meta and tensors_crc32(sd) != meta["crc32"]:
        raise InputError("corrupt weights: the tensors' checksum differs from the one saved "
                         "with them", wpath)
    return sd


def _check_metadata(meta: dict, wpath: str) -> None:
    """asr-kd writes {"format", "crc32"} (or "format" alone: not checked); weights
    from elsewhere have none.  Anything else is damage (a flipped bit in a key
    would otherwise just skip the checksum) or a file of another program."""
    if not meta:
        return
    if meta.get("format") != FORMAT or set(meta) - {"format", "crc32"}:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(meta.items()))[:120]
        raise InputError(f"unexpected safetensors metadata ({shown}): damaged, or not "
                         "written by asr-kd", wpath)


def _check_weights(sd: dict, expected: dict, wpath: str, tok_file: str) -> None:
    """Names, shapes and finiteness of the loaded tensors against a fresh model's."""
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    if missing or unexpected:
        raise InputError(f"weights do not match {CONFIG} (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}): the weights and the config do not "
                         "belong together", wpath)
    for k, v in expected.items():
        got, want = tuple(sd[k].shape), tuple(v.shape)
        if got != want and k in ("embed.weight", "out.bias") and got[0] != want[0]:
            raise InputError(f"the weights have {got[0]} vocabulary rows ({k} shape {got}), "
                             f"but {tok_file} and {CONFIG} have {want[0]} ids", wpath)
        if got != want:
            raise InputError(f"tensor {k} has shape {got}, {CONFIG} says {want}: the weights and "
                             "the config do not belong together", wpath)
        if not torch.isfinite(sd[k]).all():
            raise InputError(f"tensor {k} holds NaN or inf", wpath)


def load_model(model_dir: str, device: str | torch.device = "cpu"):
    """Load ``(model, tokenizer, config)`` from a model folder; model in eval mode."""
    model_dir = os.fspath(model_dir)
    cfg = read_config(model_dir)
    cfg_path = os.path.join(model_dir, CONFIG)
    try:
        lm_cfg = LMConfig.from_dict(cfg["model"])
        model = LstmLM(lm_cfg)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        raise InputError(f"bad model section ({e})", cfg_path) from None
    tokenizer = load_tokenizer_for(model_dir, cfg)
    _check_tokenizer(model_dir, cfg, tokenizer, lm_cfg.vocab_size)
    wpath = os.path.join(model_dir, WEIGHTS)
    sd = _read_weights(wpath)
    _check_weights(sd, _state_for_save(model), wpath, _tokenizer_section(model_dir, cfg)["file"])
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


def load_models(model_dirs: list[str], device="cpu", combine: str = "prob",
                allow_exported: bool = False):
    """One model, or a TeacherEnsemble of several sharing one tokenizer: (model, tokenizer).

    The model is an :class:`~asr_kd.lm.LanguageModel` either way (an ensemble's
    members may be exported models too), so callers never ask which it is.

    ``allow_exported``: folders written by ``asr-kd export`` load as
    :class:`~asr_kd.export.OnnxLM` (scoring only: rescore and ppl); otherwise they
    are refused by name.
    """
    from .export import is_exported, load_exported
    from .models import TeacherEnsemble

    def one(d):
        if not is_exported(d):
            return load_model(d, device)
        if not allow_exported:
            raise InputError("an exported (ONNX) model can only score (rescore, ppl); give the "
                             "PyTorch model folder it was exported from", d)
        return load_exported(d)

    loaded = [one(d) for d in model_dirs]
    tok = loaded[0][1]
    for d, (_, t, _) in zip(model_dirs[1:], loaded[1:]):
        if not same_tokenizer(tok, t):
            raise InputError(f"vocabulary differs from {model_dirs[0]}'s; ensemble members "
                             "must share one tokenizer", d)
    if len(loaded) == 1:
        return loaded[0][0], tok
    return TeacherEnsemble([m for m, _, _ in loaded], combine).to(device).eval(), tok
