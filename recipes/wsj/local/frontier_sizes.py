#!/usr/bin/env python3
"""The plan of a size frontier (run.sh --frontier), one line per size:

    local/frontier_sizes.py --sizes 1x16,e64h64 [--trust none,margin] [--trust-at 1x16]
        [--int8 true|false|SIZES] [--json]

prints ``NAME LAYERS HIDDEN EMBED PROJ INT8 MODES`` per size (INT8: 1 or 0; MODES: the
comma-separated trust modes of its students, the first one the main student); with
--json, the same as JSON, {"sizes": [...]} (exp/frontier/sizes.json, read by asr-kd report).  The
syntax is asr_kd.frontier_sizes'; a malformed option stops with one line, status 1.
"""
import argparse
import json
import sys

from asr_kd.frontier_sizes import parse_sizes, parse_trust_modes, pick_sizes


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", required=True)
    p.add_argument("--trust", default="none", help="trust modes; the first at every size")
    p.add_argument("--trust-at", default="", help="sizes that get the other modes (all)")
    p.add_argument("--int8", default="false", help="true | false | sizes with an int8 student")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    try:
        sizes = parse_sizes(a.sizes)
        modes = parse_trust_modes(a.trust)
        extra_at = set(pick_sizes(a.trust_at, sizes, "--frontier-trust-at"))
        int8 = {"true": {s.name for s in sizes}, "false": set()}.get(a.int8)
        if int8 is None:
            int8 = set(pick_sizes(a.int8, sizes, "--frontier-int8"))
    except ValueError as e:
        print(f"run.sh: {e}", file=sys.stderr)
        return 1
    plan = [{"name": s.name, "num_layers": s.num_layers, "hidden_dim": s.hidden_dim,
             "embed_dim": s.embed_dim, "proj_dim": s.proj_dim, "int8": s.name in int8,
             "trust": modes if s.name in extra_at else modes[:1]} for s in sizes]
    if a.json:
        print(json.dumps({"sizes": plan}, indent=1))
    for s in [] if a.json else plan:
        print(s["name"], s["num_layers"], s["hidden_dim"], s["embed_dim"], s["proj_dim"],
              int(s["int8"]), ",".join(s["trust"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
