"""Tiny N-best fixtures in each real on-disk layout, generated into tmp folders.

``UTTS`` is the shared content: utterance ids with dashes, an empty hypothesis,
and different N per utterance.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import kaldiio
import numpy as np

# (utt, [(text, am, lm0)]) -- natural-log scores, exactly representable in float32
UTTS = [
    ("spk1-utt-001", [("hello world", -100.5, -20.25), ("hello word", -101.0, -22.5),
                      ("", -130.0, -5.0)]),
    ("spk2-utt-002", [("a b c", -50.0, -10.75)]),
]


def write_text(path: Path, text: str, crlf: bool = False, bom: bool = False) -> Path:
    """Write ``text`` as UTF-8 (optionally CRLF line ends, a BOM, gzip by suffix)."""
    data = text.replace("\n", "\r\n") if crlf else text
    raw = (b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def write_json(path: Path, obj) -> Path:
    return write_text(path, json.dumps(obj))


def kaldi_folder(folder: Path, utts=UTTS, crlf: bool = False) -> Path:
    """An nbest-to-linear folder: words_text as text lines, cost archives with kaldiio."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for utt, hyps in utts:
        for i, (text, _, _) in enumerate(hyps, 1):
            lines.append(f"{utt}-{i} {text}".rstrip() + "\n")
    write_text(folder / "words_text", "".join(lines), crlf=crlf)
    for name, col in (("acwt", 1), ("lmwt.withlm", 2)):
        with kaldiio.WriteHelper(f"ark,t:{folder / name}") as w:
            for utt, hyps in utts:
                for i, h in enumerate(hyps, 1):
                    w[f"{utt}-{i}"] = np.array([-h[col]], dtype=np.float32)
    return folder


def espnet_folder(root: Path, utts, with_scores: bool = True) -> Path:
    """``root/<K>best_recog/{text,score,scores}`` for utts = [(id, [(text, score, dec, ctc)])]."""
    kmax = max(len(h) for _, h in utts)
    for k in range(1, kmax + 1):
        d = root / f"{k}best_recog"
        text, score, scores = [], [], []
        for utt, hyps in utts:
            if len(hyps) < k:
                continue
            t, s, dec, ctc = hyps[k - 1]
            text.append(f"{utt} {t}".rstrip() + "\n")
            score.append(f"{utt} tensor({s})\n")
            scores.append(f"{utt} " + json.dumps({"decoder": f"tensor({dec})", "ctc": ctc}) + "\n")
        write_text(d / "text", "".join(text))
        write_text(d / "score", "".join(score))
        if with_scores:
            write_text(d / "scores", "".join(scores))
    (root / "logdir").mkdir(exist_ok=True)
    write_text(root / "logdir" / "asr_inference.1.log", "log\n")
    return root
