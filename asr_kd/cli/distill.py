"""asr-kd distill: train a student LM from a teacher (ensemble) or a teacher cache."""
from __future__ import annotations

import dataclasses
import logging
import os


from ..config import kd_config, training_inputs
from ..distill import KDObjective, cache_ensemble, check_impl
from .. import dist
from ..errors import InputError
from ..modeldir import load_models, same_tokenizer
from ..models import build_model
from ..ops import TRUST_MODES, KDConfig
from ..ops.kd_types import ENSEMBLES, IMPLS
from ..teacher_cache import TeacherCache
from ..device import pick_device
from ..train import Interrupted, train
from .common import (add_training_args, no_lone_log_on_failure, report_interrupted,
                     resume_command, setup_training_logging, training_out)

log = logging.getLogger("asr_kd")


def register(sub) -> None:
    p = sub.add_parser(
        "distill", help="distil a teacher (or ensemble) into a student LSTM LM",
        description="Train a student with L = (1 - alpha*w) CE + alpha*w tau^2 KL(p^tau || q^tau). "
        "Model/training options come from --config and --key value overrides, as in train-lm; "
        "distillation settings from the config's kd: section (alpha, tau, trust, trust_k, "
        "trust_beta, ensemble, chunk_size, impl), overridden by the flags below.")
    add_training_args(p)
    t = p.add_mutually_exclusive_group(required=True)
    t.add_argument("--teacher", nargs="+", help="teacher model folder(s); several = ensemble")
    t.add_argument("--teacher-cache", help="folder written by asr-kd cache-teacher")
    # The distillation flags override the config's kd: section, which overrides
    # KDConfig's defaults; so no flag has an argparse default (None = not given).
    d = KDConfig()
    p.add_argument("--ensemble", choices=list(ENSEMBLES),
                   help=f"how an ensemble of teachers combines (default {d.ensemble})")
    p.add_argument("--alpha", type=float, help=f"weight of the soft term (0..1; default {d.alpha})")
    p.add_argument("--tau", type=float, help=f"temperature (default {d.tau})")
    p.add_argument("--trust", choices=list(TRUST_MODES),
                   help=f"per-token trust in the teacher (our definition; see docs; "
                   f"default {d.trust})")
    p.add_argument("--trust-k", type=int, help=f"rank mode: top-k (default {d.trust_k})")
    p.add_argument("--trust-beta", type=float, help=f"margin mode: slope (default {d.trust_beta})")
    p.add_argument("--kd-impl", choices=list(IMPLS),
                   help=f"loss implementation (auto: Triton on CUDA when available; "
                   f"default {d.impl})")
    p.set_defaults(func=run, allow_extra=True)


# KDConfig field -> the distill flag that sets it (argparse dest: the flag's name with "_").
KD_FLAGS = {"alpha": "--alpha", "tau": "--tau", "trust": "--trust", "trust_k": "--trust-k",
            "trust_beta": "--trust-beta", "ensemble": "--ensemble", "impl": "--kd-impl"}


def kd_flags(args) -> dict:
    """The distillation settings given on the command line, by KDConfig field."""
    given = {f: getattr(args, flag[2:].replace("-", "_")) for f, flag in KD_FLAGS.items()}
    return {f: v for f, v in given.items() if v is not None}


def ensemble_given(args, section: dict | None) -> str | None:
    """Where the ensemble rule was set explicitly: ``"--ensemble"``, ``"kd.ensemble"``
    (the config's kd: section) or None (KDConfig's default)."""
    if args.ensemble is not None:
        return "--ensemble"
    return "kd.ensemble" if (section or {}).get("ensemble") is not None else None


@no_lone_log_on_failure("distill")
def run(args) -> int:
    with training_out(args, "distill"):
        return _run(args)


def _run(args) -> int:
    setup_training_logging(args, args.out, "distill")
    # A signal before the training loop (while reading the data) stops without a new
    # checkpoint; the same --resume command continues from the last one.
    args.interrupt_hint = f"to continue, run: {resume_command(args)}"
    model_kw, tcfg, rest, tok, train_s, valid_s = training_inputs(
        args.config, args.extra, args.train, args.valid, args.vocab, sections={"kd"})
    settings = kd_config(rest.get("kd"), kd_flags(args), KD_FLAGS, args.config)
    device = pick_device(args.device)
    check_impl(settings, device)
    teacher = cache = None
    if args.teacher:
        teacher, t_tok = load_models(args.teacher, device, settings.ensemble)
        src = args.teacher[0]
    else:
        cache = TeacherCache(args.teacher_cache)
        t_tok, src = cache.tokenizer, args.teacher_cache
        settings = cache_ensemble(settings, cache.meta.get("ensemble"),
                                  ensemble_given(args, rest.get("kd")), args.teacher_cache)
    if args.vocab:
        if not same_tokenizer(tok, t_tok):
            raise InputError("the student's vocabulary (--vocab) differs from the teacher's; "
                             "distillation needs one shared vocabulary", args.vocab)
    tok = t_tok  # the student always uses the teacher's tokenizer
    train_ids = [tok.encode(s) for s in train_s]
    valid_ids = [tok.encode(s) for s in valid_s]
    if cache is not None:
        # under torchrun the layout is that of the global batch (batch_size x world size)
        cache.check(tok, train_ids, tcfg.batching, tcfg.batch_size * dist.world(), tcfg.bptt,
                    tcfg.max_len)
        if settings.trust == "rank" and settings.trust_k > cache.meta["topk"]:
            raise InputError(f"--trust rank needs --trust-k <= the cache's top-K "
                             f"({cache.meta['topk']}), got {settings.trust_k}", args.teacher_cache)
    model = build_model(model_kw, tok.size, args.seed)
    log.info("student: %d parameters; teacher: %s; %s", model.num_params(),
             f"{teacher.num_params()} parameters" if teacher is not None else f"cache {src}",
             settings)
    teachers = [os.path.abspath(d) for d in (args.teacher or [src])]
    # what the objective is: a resume must go on with the same (the loss implementation
    # and its memory bound may change, they compute the same loss)
    objective = {"kd": {k: v for k, v in dataclasses.asdict(settings).items()
                        if k not in ("impl", "chunk_size")}, "teacher": teachers}
    try:
        hist = train(model, KDObjective(settings, teacher=teacher, cache=cache), tok, train_ids,
                     valid_ids, tcfg, args.out, seed=args.seed, device=device, resume=args.resume,
                     quiet=args.quiet,
                     extra_config={"kind": "student", "kd": dataclasses.asdict(settings),
                                   "teacher": teachers,
                                   "train_text": os.path.abspath(args.train)},
                     resume_settings=objective)
    except Interrupted as e:
        return report_interrupted(args, e)
    if hist and dist.is_main():
        print(f"done: {len(hist)} epochs, best valid ppl {min(h['valid_ppl'] for h in hist):.2f}; "
              f"student in {args.out}")
    return 0
