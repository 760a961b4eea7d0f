"""asr-kd distill: train a student LM from a teacher (ensemble) or a teacher cache."""
from __future__ import annotations

import logging
import os


from ..distill import KDObjective, KDSettings
from .. import dist
from ..errors import InputError
from ..modeldir import load_models, same_tokenizer
from ..ops import TRUST_MODES
from ..teacher_cache import TeacherCache
from ..device import pick_device
from ..train import Interrupted, train
from .common import report_interrupted, resume_command, setup_training_logging
from .train_lm import add_training_args, build_model, prepare

log = logging.getLogger("asr_kd")


def register(sub) -> None:
    p = sub.add_parser(
        "distill", help="distil a teacher (or ensemble) into a student LSTM LM",
        description="Train a student with L = (1 - alpha*w) CE + alpha*w tau^2 KL(p^tau || q^tau). "
        "Model/training options come from --config and --key value overrides, as in train-lm.")
    add_training_args(p)
    t = p.add_mutually_exclusive_group(required=True)
    t.add_argument("--teacher", nargs="+", help="teacher model folder(s); several = ensemble")
    t.add_argument("--teacher-cache", help="folder written by asr-kd cache-teacher")
    p.add_argument("--ensemble", default="prob", choices=["prob", "logit"])
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the soft term (0..1)")
    p.add_argument("--tau", type=float, default=2.0, help="temperature")
    p.add_argument("--trust", default="none", choices=list(TRUST_MODES),
                   help="per-token trust in the teacher (our definition; see docs)")
    p.add_argument("--trust-k", type=int, default=10, help="rank mode: top-k")
    p.add_argument("--trust-beta", type=float, default=1.0, help="margin mode: slope")
    p.add_argument("--kd-impl", default="auto", choices=["auto", "torch", "reference", "triton"],
                   help="loss implementation (auto: Triton on CUDA when available)")
    p.set_defaults(func=run, allow_extra=True)


def run(args) -> int:
    setup_training_logging(args, args.out, "distill")
    # A signal before the training loop (while reading the data) stops without a new
    # checkpoint; the same --resume command continues from the last one.
    args.interrupt_hint = f"to continue, run: {resume_command(args)}"
    if not 0.0 <= args.alpha <= 1.0:
        raise InputError(f"--alpha must be in [0, 1], got {args.alpha}")
    if args.tau <= 0:
        raise InputError(f"--tau must be > 0, got {args.tau}")
    model_kw, tcfg, _, tok, train_s, valid_s = prepare(args)
    device = pick_device(args.device)
    teacher = cache = None
    if args.teacher:
        teacher, t_tok = load_models(args.teacher, device, args.ensemble)
        src = args.teacher[0]
    else:
        cache = TeacherCache(args.teacher_cache)
        t_tok, src = cache.tokenizer, args.teacher_cache
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
        if args.trust == "rank" and args.trust_k > cache.meta["topk"]:
            raise InputError(f"--trust rank needs --trust-k <= the cache's top-K "
                             f"({cache.meta['topk']}), got {args.trust_k}", args.teacher_cache)
    model = build_model(model_kw, tok.size, args.seed)
    settings = KDSettings(alpha=args.alpha, tau=args.tau, trust=args.trust, trust_k=args.trust_k,
                          trust_beta=args.trust_beta, ensemble=args.ensemble, impl=args.kd_impl)
    log.info("student: %d parameters; teacher: %s; %s", model.num_params(),
             f"{teacher.num_params()} parameters" if teacher is not None else f"cache {src}",
             settings)
    try:
        hist = train(model, KDObjective(settings, teacher=teacher, cache=cache), tok, train_ids,
                     valid_ids, tcfg, args.out, seed=args.seed, device=device, resume=args.resume,
                     quiet=args.quiet,
                     extra_config={"kind": "student", "kd": vars(settings),
                                   "teacher": [os.path.abspath(d) for d in (args.teacher or [src])],
                                   "train_text": os.path.abspath(args.train)})
    except Interrupted as e:
        return report_interrupted(args, e)
    if hist and dist.is_main():
        print(f"done: {len(hist)} epochs, best valid ppl {min(h['valid_ppl'] for h in hist):.2f}; "
              f"student in {args.out}")
    return 0
