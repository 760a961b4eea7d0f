"""asr-kd train-lm: train an LSTM LM (teacher, baseline or any LM)."""
from __future__ import annotations

import logging
import os

import torch

from ..config import MODEL_KEYS, TRAIN_KEYS, load_config, parse_overrides, split_config
from ..corpus import read_sentences
from .. import dist
from ..errors import InputError
from ..models import LMConfig, LstmLM
from ..device import pick_device
from ..train import Interrupted, LMObjective, train
from ..vocab import WordVocab, load_vocab_path
from .common import (add_common, add_device, no_lone_log_on_failure, report_interrupted,
                     resume_command, setup_training_logging, training_out)

log = logging.getLogger("asr_kd")


def add_training_args(p) -> None:
    p.add_argument("--config", help="YAML file of model and training options")
    p.add_argument("--train", required=True, help="training text (plain or Kaldi text)")
    p.add_argument("--valid", required=True, help="validation text")
    p.add_argument("--out", required=True, help="output model folder")
    p.add_argument("--vocab", help="words.txt / spm.model or a folder holding one "
                   "(default: all words of --train)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the initial weights, batch order and dropout (default 0); "
                   "recorded in config.json")
    add_device(p)
    add_common(p)


def register(sub) -> None:
    p = sub.add_parser("train-lm", help="train an LSTM language model",
                       description="Train an LSTM LM. Any model or training option of the "
                       "config can be overridden as --key value (e.g. --hidden-dim 650 --lr 0.5).")
    add_training_args(p)
    p.set_defaults(func=run, allow_extra=True)


def prepare(args, extra_keys=frozenset(), sections=frozenset()):
    """Read config, texts and vocabulary: (model cfg dict, TrainConfig, rest, tok, train, valid)."""
    overrides = parse_overrides(args.extra, MODEL_KEYS | TRAIN_KEYS | set(extra_keys))
    raw = load_config(args.config, overrides, set(extra_keys), set(sections))
    model_kw, tcfg, rest = split_config(raw)
    train_s = read_sentences(args.train, tcfg.text_format)
    valid_s = read_sentences(args.valid, tcfg.text_format)
    tok = load_vocab_path(args.vocab) if args.vocab else WordVocab.build(train_s)
    return model_kw, tcfg, rest, tok, train_s, valid_s


def build_model(model_kw: dict, vocab_size: int, seed: int) -> LstmLM:
    """A freshly initialised LstmLM (seeded); bad options are an InputError."""
    torch.manual_seed(seed)
    try:
        return LstmLM(LMConfig(vocab_size=vocab_size, **model_kw))
    except (TypeError, ValueError) as e:
        raise InputError(f"bad model option: {e}") from None


@no_lone_log_on_failure("train")
def run(args) -> int:
    with training_out(args, "train-lm"):
        return _run(args)


def _run(args) -> int:
    setup_training_logging(args, args.out, "train")
    # A signal before the training loop (while reading the data) stops without a new
    # checkpoint; the same --resume command continues from the last one.
    args.interrupt_hint = f"to continue, run: {resume_command(args)}"
    model_kw, tcfg, _, tok, train_s, valid_s = prepare(args)
    device = pick_device(args.device)
    model = build_model(model_kw, tok.size, args.seed)
    log.info("model: %s, %d parameters; vocabulary %d; device %s",
             model.cfg.to_dict(), model.num_params(), tok.size, device)
    train_ids = [tok.encode(s) for s in train_s]
    valid_ids = [tok.encode(s) for s in valid_s]
    try:
        hist = train(model, LMObjective(tcfg.output_loss), tok, train_ids, valid_ids, tcfg,
                     args.out, seed=args.seed, device=device, resume=args.resume, quiet=args.quiet,
                     extra_config={"kind": "lm", "train_text": os.path.abspath(args.train)})
    except Interrupted as e:
        return report_interrupted(args, e)
    if hist and dist.is_main():
        best = min(h["valid_ppl"] for h in hist)
        print(f"done: {len(hist)} epochs, best valid ppl {best:.2f}; model in {args.out}")
    return 0
