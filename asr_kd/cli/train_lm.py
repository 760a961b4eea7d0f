"""asr-kd train-lm: train an LSTM LM (teacher, baseline or any LM)."""
from __future__ import annotations

import logging
import os

from ..config import training_inputs
from .. import dist
from ..models import build_model
from ..device import pick_device
from ..train import Interrupted, LMObjective, train
from .common import (add_training_args, no_lone_log_on_failure, report_interrupted,
                     resume_command, setup_training_logging, training_out)

log = logging.getLogger("asr_kd")


def register(sub) -> None:
    p = sub.add_parser("train-lm", help="train an LSTM language model",
                       description="Train an LSTM LM. Any model or training option of the "
                       "config can be overridden as --key value (e.g. --hidden-dim 650 --lr 0.5).")
    add_training_args(p)
    p.set_defaults(func=run, allow_extra=True)


@no_lone_log_on_failure("train")
def run(args) -> int:
    with training_out(args, "train-lm"):
        return _run(args)


def _run(args) -> int:
    setup_training_logging(args, args.out, "train")
    # A signal before the training loop (while reading the data) stops without a new
    # checkpoint; the same --resume command continues from the last one.
    args.interrupt_hint = f"to continue, run: {resume_command(args)}"
    model_kw, tcfg, _, tok, train_s, valid_s = training_inputs(args.config, args.extra,
                                                               args.train, args.valid, args.vocab)
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
