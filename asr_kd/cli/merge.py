"""asr-kd merge: check that every shard of a parallel job is done and combine them."""
from __future__ import annotations

from ..errors import InputError
from ..sharding import merge_shards
from ..teacher_cache import finish_cache
from .common import add_common, setup_logging


def register(sub) -> None:
    p = sub.add_parser(
        "merge", help="merge the shards of a parallel rescore or cache-teacher job",
        description="rescore: check that OUT.shard-i-of-n.jsonl[.gz] exists and is complete for "
        "every i (same input, name and models, unchanged since written) and write OUT with the "
        "utterances in input order (byte-identical to an unsharded run). cache: check that every "
        "shard of the cache folder is done and write its manifest.json. A missing shard is "
        "refused with a message listing it.")
    p.add_argument("--kind", required=True, choices=["rescore", "cache"],
                   help="rescore: shards of asr-kd rescore --shard; cache: shards of asr-kd "
                   "cache-teacher --shard")
    p.add_argument("target", help="rescore: the output file the shards were written for "
                   "(the --out of asr-kd rescore); cache: the cache folder")
    p.add_argument("--num-shards", type=int, default=None,
                   help="rescore: the n of the split (default: found from the shard files)")
    add_common(p)
    p.set_defaults(func=run)


def run(args) -> int:
    setup_logging(args)
    if args.num_shards is not None and args.num_shards < 1:
        raise InputError(f"--num-shards must be >= 1, got {args.num_shards}")
    if args.kind == "rescore":
        n = merge_shards(args.target, args.num_shards)
        print(f"merged {n} shard(s) into {args.target}")
    else:
        meta = finish_cache(args.target)
        print(f"cache complete: {meta['num_tokens']} tokens, {meta['num_shards']} shard(s); "
              f"wrote {args.target}/manifest.json")
    return 0
