"""Training configuration: YAML file + ``--key value`` command-line overrides.

One flat YAML mapping holds model keys (see :class:`asr_kd.models.LMConfig`)
and training keys (see :class:`TrainConfig`).  Overrides accept ``--hidden-dim
650`` or ``--hidden_dim 650``; values are parsed as YAML scalars.  Unknown keys
are refused so a typo never silently trains the wrong model.

A student config may also hold one nested section, ``kd:`` (the distillation
settings, fields of :class:`asr_kd.ops.KDConfig`), read by ``asr-kd distill``
(and accepted by ``cache-teacher``, which takes the same file); ``train-lm``
refuses it.  Its command-line overrides are distill's own flags (``--alpha``,
``--kd-impl``, ...), combined by :func:`kd_config`.
"""
from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass, fields

import yaml

from .errors import InputError
from .fileio import SMALL_DOC_BYTES, read_bounded
from .models import LMConfig
from .ops import KDConfig


@dataclass
class TrainConfig:
    """How to train (shared by train-lm and distill)."""

    batching: str = "sentence"      # "sentence" | "stream"
    batch_size: int = 32            # sentences (sentence mode) or streams (stream mode)
    bptt: int = 35                  # window length in stream mode
    max_len: int = 400              # sentence mode: longer sentences are split
    epochs: int = 10
    optimizer: str = "sgd"          # "sgd" | "adamw"
    lr: float = 1.0
    momentum: float = 0.0
    weight_decay: float = 0.0
    lr_schedule: str = "plateau"    # "plateau" | "epoch_decay" | "constant"
    decay_factor: float = 0.5
    decay_start: int = 4            # epoch_decay: epochs after this one decay
    plateau_threshold: float = 0.003  # relative valid-PPL gain needed to keep the LR
    min_lr: float = 0.0
    early_stop: int = 0             # stop after this many epochs without improvement (0 = off)
    clip: float = 5.0
    grad_reduction: str = "token"   # "token": mean per token; "sequence": sum over time / batch (Zaremba)
    checkpoint_every: int = 0       # steps between mid-epoch checkpoints (0 = epoch ends only)
    max_bad_steps: int = 20         # consecutive non-finite steps before giving up
    amp: bool = True                # bf16 autocast on CUDA (ignored on CPU)
    cpu_bf16: str = "off"           # "off" | "auto" | "on": bf16 autocast for CPU training
                                    # (auto: where the CPU has AMX or AVX512-BF16)
    output_loss: str = "fused"      # "fused" | "full": blocked linear + CE, or logits + CE
    eval_batch_size: int = 64
    text_format: str = "auto"       # "auto" | "plain" | "kaldi"

    def __post_init__(self):
        # YAML 1.1 reads off/on/yes/no as booleans
        if isinstance(self.cpu_bf16, bool):
            self.cpu_bf16 = "on" if self.cpu_bf16 else "off"

    def validate(self) -> None:
        choices = {"batching": ("sentence", "stream"), "optimizer": ("sgd", "adamw"),
                   "lr_schedule": ("plateau", "epoch_decay", "constant"),
                   "grad_reduction": ("token", "sequence"),
                   "text_format": ("auto", "plain", "kaldi"),
                   "cpu_bf16": ("off", "auto", "on"), "output_loss": ("fused", "full")}
        for k, allowed in choices.items():
            if getattr(self, k) not in allowed:
                raise ValueError(f"{k} must be one of {', '.join(allowed)}, got {getattr(self, k)!r}")
        if self.batch_size < 1 or self.bptt < 1 or self.epochs < 0:
            raise ValueError("batch_size and bptt must be >= 1 and epochs >= 0")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ValueError(f"lr must be > 0 and finite, got {self.lr}")


MODEL_KEYS = {f.name for f in fields(LMConfig)} - {"vocab_size"}
TRAIN_KEYS = {f.name for f in fields(TrainConfig)}
KD_KEYS = {f.name for f in fields(KDConfig)}


# Values in a config file, aliases expanded, at most: a config is a few dozen scalars,
# and a YAML alias bomb (nested aliases) expands to billions.
MAX_CONFIG_NODES = 10_000


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML itself
    keeps the last silently: ``lr: 1.0`` then ``lr: 20`` trains at 20)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                dup = key in seen
                seen.add(key)
            except TypeError:   # unhashable key: SafeLoader's own error follows
                dup = False
            if dup:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {reprlib.repr(key)} is given twice",
                    key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _too_big(obj, budget: int = MAX_CONFIG_NODES) -> bool:
    """True when ``obj`` holds more than ``budget`` values, aliases counted each time."""
    stack, n = [obj], 0
    while stack:
        o = stack.pop()
        n += 1
        if n > budget:
            return True
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple)):
            stack.extend(o)
    return False


_FIELD_TYPES = {f.name: f.type for f in (*fields(LMConfig), *fields(TrainConfig))}
# Model options that torch would refuse later, away from the file that set them:
# key -> (lowest allowed, bound it must stay below), None for none.
_MODEL_RANGES = {"embed_dim": (1, None), "hidden_dim": (1, None), "num_layers": (1, None),
                 "proj_dim": (0, None), "dropout": (0, 1), "init_range": (0, None)}


def check_value(key: str, value) -> None:
    """ValueError when ``value`` cannot be the model or training option ``key``: the
    wrong type (``hidden_dim: [1, 2]``, ``amp: maybe``), a float that is not finite
    (``lr: .inf``) or a model size out of range (``dropout: 1.5``).  Keys of other
    sections are not checked here."""
    kind = _FIELD_TYPES.get(key)
    if kind is None:
        return
    shown = reprlib.repr(value)
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{key}: expected an integer, got {shown}")
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = ""
            if isinstance(value, str):
                try:
                    float(value)
                    hint = " (YAML reads 1e-3 as a string: write 1.0e-3)"
                except ValueError:
                    pass
            raise ValueError(f"{key}: expected a number, got {shown}{hint}")
        if not math.isfinite(value):
            raise ValueError(f"{key}: expected a finite number, got {shown}")
    if kind == "bool" and not isinstance(value, bool):
        raise ValueError(f"{key}: expected true or false, got {shown}")
    # tie and cpu_bf16 take yes/no, on/off, which YAML reads as booleans
    if kind == "str" and not isinstance(value, str) and not (key in ("tie", "cpu_bf16")
                                                             and isinstance(value, bool)):
        raise ValueError(f"{key}: expected a string, got {shown}")
    low, high = _MODEL_RANGES.get(key, (None, None))
    if low is not None and not low <= value and not isinstance(value, bool):
        raise ValueError(f"{key} must be >= {low}, got {value}")
    if high is not None and not value < high:
        raise ValueError(f"{key} must be < {high}, got {value}")


def _check_values(values: dict, path: str | None, flags: bool = False) -> None:
    """Each model and training value of ``values`` checked (:func:`check_value`), and
    the training ones together (:meth:`TrainConfig.validate`); an InputError naming
    ``path`` and the key (or, for ``flags``, the option ``--key``)."""
    def named(msg: str) -> str:   # "lr: ..." / "lr must ..." -> "--lr: ..." for a flag
        key = msg.split(":")[0].split()[0]
        return f"--{key.replace('_', '-')}{msg[len(key):]}" if flags and key in values else msg

    try:
        for k, v in values.items():
            check_value(k, v)
        TrainConfig(**{k: v for k, v in values.items() if k in TRAIN_KEYS}).validate()
        if "tie" in values:
            LMConfig(vocab_size=1, tie=values["tie"])
    except ValueError as e:
        raise InputError(named(str(e)), path) from None


def parse_overrides(extra: list[str], allowed: set[str]) -> dict:
    """``['--hidden-dim', '650', '--tie', 'no']`` -> ``{'hidden_dim': 650, 'tie': 'no'}``."""
    out, i = {}, 0
    while i < len(extra):
        tok = extra[i]
        if not tok.startswith("--"):
            raise InputError(f"unexpected argument {tok!r} (overrides look like --key value)")
        key = tok[2:].replace("-", "_")
        if "=" in key:
            key, val = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(extra):
                raise InputError(f"option {tok} needs a value")
            val = extra[i + 1]
            i += 2
        if key not in allowed:
            raise InputError(f"unknown option --{key.replace('_', '-')}; known: "
                             + ", ".join(sorted(allowed)))
        out[key] = yaml.safe_load(val)
    return out


def load_config(path: str | None, overrides: dict, extra_keys: set[str] = frozenset(),
                sections: set[str] = frozenset()) -> dict:
    """Read the YAML mapping at ``path`` (optional) and apply ``overrides``.

    ``sections``: the nested sections the calling command reads (``{"kd"}`` for
    distill); a ``kd:`` section elsewhere is refused, naming the file.  An accepted
    ``kd`` entry of the result is a dict of known KDConfig keys (unvalidated values).
    """
    raw = {}
    if path:
        try:
            with open(path, "rb") as f:
                text = read_bounded(f, SMALL_DOC_BYTES, path, "config", var=None)
            raw = yaml.load(text.decode("utf-8"), Loader=_UniqueKeyLoader) or {}
        except FileNotFoundError:
            raise InputError("no such config file", path) from None
        except IsADirectoryError:
            raise InputError("is a folder, expected a config file", path) from None
        except UnicodeDecodeError as e:
            raise InputError(f"not valid UTF-8 (byte {e.start})", path) from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            raise InputError(f"bad YAML ({getattr(e, 'problem', e)})", path,
                             None if mark is None else mark.line + 1) from None
        except RecursionError:
            raise InputError("bad YAML (nested too deeply)", path) from None
        if not isinstance(raw, dict):
            raise InputError("expected a mapping of options", path)
        if _too_big(raw):
            raise InputError(f"more than {MAX_CONFIG_NODES} values once its aliases are "
                             "expanded (a YAML alias bomb?); a config is a mapping of options",
                             path)
        bad = set(raw) - MODEL_KEYS - TRAIN_KEYS - set(extra_keys) - {"kd"}
        if bad:
            raise InputError(f"unknown options {', '.join(sorted(map(str, bad)))}", path)
        _check_values({k: v for k, v in raw.items() if k not in overrides}, path)
        if "kd" in raw:
            raw["kd"] = _kd_section(raw["kd"], "kd" in sections, path)
    _check_values(overrides, None, flags=True)
    raw.update(overrides)
    return raw


def _kd_section(kd, wanted: bool, path: str) -> dict:
    """The ``kd:`` mapping of a config file, its keys checked like the top level's."""
    if not wanted:
        raise InputError("the kd: section (distillation settings) is read by asr-kd distill "
                         "only; remove it from this config", path)
    if kd is None:          # "kd:" with nothing under it
        return {}
    if not isinstance(kd, dict):
        raise InputError("kd: expected a mapping of distillation settings "
                         "(e.g. kd: {alpha: 0.5, tau: 2.0})", path)
    bad = set(kd) - KD_KEYS
    if bad:
        names = ", ".join("kd." + str(k) for k in sorted(bad, key=str))
        raise InputError(f"unknown options {names}; known in kd: {', '.join(sorted(KD_KEYS))}",
                         path)
    return dict(kd)


def kd_config(section: dict | None, flags: dict, flag_names: dict[str, str],
              path: str | None = None) -> KDConfig:
    """The effective distillation settings: KDConfig defaults < ``section`` (the
    config file's ``kd:`` mapping) < ``flags`` (field -> value given on the command
    line; fields not given are absent).  A bad value is a one-line InputError naming
    where it came from: ``path: kd.alpha must be ...`` or ``--alpha must be ...``
    (``flag_names`` maps a field to its flag).
    """
    from_file = {k: v for k, v in (section or {}).items() if k not in flags}
    # Every check of KDConfig.validate concerns one field, so validating the file's
    # values first and then all of them pins a failure on the file or on a flag.
    try:
        KDConfig(**from_file).validate(name=lambda f: f"kd.{f}")
    except ValueError as e:
        raise InputError(str(e), path) from None
    cfg = KDConfig(**from_file, **flags)
    try:
        cfg.validate(name=lambda f: flag_names.get(f, f"kd.{f}"))
    except ValueError as e:
        raise InputError(str(e)) from None
    return cfg


def split_config(raw: dict) -> tuple[dict, TrainConfig, dict]:
    """(model kwargs, TrainConfig, remaining keys) from one flat mapping."""
    model = {k: v for k, v in raw.items() if k in MODEL_KEYS}
    try:
        train = TrainConfig(**{k: v for k, v in raw.items() if k in TRAIN_KEYS})
        train.validate()
    except (TypeError, ValueError) as e:
        raise InputError(f"bad training option: {e}") from None
    rest = {k: v for k, v in raw.items() if k not in MODEL_KEYS and k not in TRAIN_KEYS}
    return model, train, rest


def training_inputs(config: str | None, extra: list[str], train: str, valid: str,
                    vocab: str | None, extra_keys=frozenset(), sections=frozenset()):
    """What a training command reads: the YAML ``config`` with the ``--key value``
    overrides ``extra`` (``extra_keys``: further allowed keys; ``sections``: allowed
    sections such as ``kd``), the ``train`` and ``valid`` texts, and the vocabulary
    (``vocab``: words.txt / spm.model or a folder holding one; None: every word of
    ``train``).  Returns (model options dict, TrainConfig, the other keys, tokenizer,
    train sentences, valid sentences)."""
    from .corpus import read_sentences
    from .vocab import WordVocab, load_vocab_path

    overrides = parse_overrides(extra, MODEL_KEYS | TRAIN_KEYS | set(extra_keys))
    raw = load_config(config, overrides, set(extra_keys), set(sections))
    model_kw, tcfg, rest = split_config(raw)
    train_s = read_sentences(train, tcfg.text_format)
    valid_s = read_sentences(valid, tcfg.text_format)
    tok = load_vocab_path(vocab) if vocab else WordVocab.build(train_s)
    return model_kw, tcfg, rest, tok, train_s, valid_s
