"""asr-kd cache-teacher: store a teacher's top-K predictions for every training token."""
from __future__ import annotations

import logging

from ..config import (MODEL_KEYS, TRAIN_KEYS, kd_config, load_config, parse_overrides,
                      split_config)
from ..corpus import read_sentences
from ..fileio import check_writable
from ..modeldir import load_models
from ..jobs import finish_under_torchrun, job_shard, split_by_torchrun
from ..teacher_cache import build_cache, finish_cache
from ..device import pick_device
from .common import add_common, add_device, setup_logging

log = logging.getLogger("asr_kd")


def register(sub) -> None:
    p = sub.add_parser(
        "cache-teacher", help="cache a teacher's top-K predictions for distillation",
        description="Run the teacher(s) over the training text once and store, for every "
        "training token, the top-K ids, their log-probs and log p(y), in memory-mapped shards. "
        "The batch layout (batching, batch_size for stream mode, max_len) must match the "
        "distillation config: pass the same --config.")
    p.add_argument("--teacher", nargs="+", required=True, help="teacher model folder(s)")
    p.add_argument("--ensemble", default=None, choices=["prob", "logit"],
                   help="how several teachers combine; default: the --config file's "
                   "kd.ensemble, else prob (recorded in the cache; distill takes it from there)")
    p.add_argument("--text", required=True, help="the training text distillation will use")
    p.add_argument("--topk", type=int, default=32,
                   help="teacher predictions kept per training token (default 32); distill's "
                   "--trust-k must not exceed it")
    p.add_argument("--out", required=True, help="cache folder")
    p.add_argument("--config", help="the distillation YAML config (batching layout)")
    p.add_argument("--shard-tokens", type=int, default=1 << 22,
                   help="rows per storage shard of the cache")
    p.add_argument("--shard", default=None, help="i/n: compute every n-th storage shard from i "
                   "(parallel jobs; the manifest appears when all are done, or check and write "
                   "it with asr-kd merge --kind cache OUT); under torchrun: RANK/WORLD_SIZE")
    add_device(p)
    add_common(p)
    p.set_defaults(func=run, allow_extra=True)


def run(args) -> int:
    setup_logging(args)
    check_writable(args.out, folder=True)
    # Finished shards are complete on disk whatever stops the job (even kill -9).
    args.interrupt_hint = "finished shards are kept: run the same command again to continue"
    overrides = parse_overrides(args.extra, MODEL_KEYS | TRAIN_KEYS)
    _, tcfg, rest = split_config(load_config(args.config, overrides, sections={"kd"}))
    # the combine rule as distill would read it from the same file (defaults < kd: < flag)
    ensemble = kd_config(rest.get("kd"), {"ensemble": args.ensemble} if args.ensemble else {},
                         {"ensemble": "--ensemble"}, args.config).ensemble
    job = job_shard(args.shard)   # (i, n): this job computes storage shards s % n == i
    device = pick_device(args.device)
    teacher, tok = load_models(args.teacher, device, ensemble)
    ids = [tok.encode(s) for s in read_sentences(args.text, tcfg.text_format)]
    meta = build_cache(teacher, tok, ids, args.out, args.topk, mode=tcfg.batching,
                       batch_size=tcfg.batch_size, bptt=tcfg.bptt, max_len=tcfg.max_len,
                       shard_tokens=args.shard_tokens, device=device, teacher_dirs=args.teacher,
                       quiet=args.quiet, job=job,
                       ensemble=ensemble if len(args.teacher) > 1 else None)
    if split_by_torchrun(args.shard):
        # wait for every rank, then rank 0 checks the shards and writes the manifest
        meta = finish_under_torchrun(lambda: finish_cache(args.out))
        if meta is None:
            return 0
        meta["missing_shards"] = []
    if meta["missing_shards"]:
        print(f"wrote shard(s) of job {job[0]}/{job[1]}; {len(meta['missing_shards'])} of "
              f"{meta['num_shards']} shards still missing (other jobs); when all are done, "
              f"`asr-kd merge --kind cache {args.out}` checks them")
    else:
        print(f"cache complete: {meta['num_tokens']} tokens, top-{args.topk}, "
              f"{meta['num_shards']} shard(s) in {args.out}")
    return 0
