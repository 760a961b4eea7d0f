"""asr-kd vocab: build words.txt or train a SentencePiece model."""
from __future__ import annotations

import os
import tempfile

from ..corpus import read_sentences
from ..errors import InputError
from ..fileio import check_writable, fsync_dir
from ..vocab import SpmTokenizer, WordVocab
from .common import TEXT_FORMAT_HELP


def register(sub) -> None:
    p = sub.add_parser("vocab", help="build a words.txt vocabulary or a SentencePiece model",
                       description="Build a Kaldi words.txt-compatible vocabulary (<s> 0, </s> 1, "
                       "<unk> 2, then words by count) or, with --spm-size, a SentencePiece model.")
    p.add_argument("--text", required=True, help="training text (plain or Kaldi text, .gz ok)")
    p.add_argument("--out", required=True, help="output folder (words.txt or spm.model)")
    p.add_argument("--max-size", type=int, default=None, help="at most this many ids")
    p.add_argument("--min-count", type=int, default=1, help="keep words seen this often")
    p.add_argument("--spm-size", type=int, default=None, help="train SentencePiece with this many pieces")
    p.add_argument("--spm-type", default="unigram", choices=["unigram", "bpe"],
                   help="SentencePiece model type, with --spm-size (default: unigram)")
    p.add_argument("--text-format", default="auto", choices=["auto", "plain", "kaldi"],
                   help=TEXT_FORMAT_HELP)
    p.set_defaults(func=run)


def _move_in_place(pairs: list[tuple[str, str]]) -> None:
    """Rename finished files to their final names, durably: fsync each file before
    its rename and the folder after, so neither a crash nor a power loss leaves a
    truncated spm.model under its final name."""
    try:
        for src, _ in pairs:
            with open(src, "rb") as f:
                os.fsync(f.fileno())
        for src, dst in pairs:
            os.replace(src, dst)
    except OSError as e:
        raise InputError(f"cannot write: {e.strerror or e}", e.filename or pairs[0][1]) from None
    fsync_dir(os.path.dirname(os.path.abspath(pairs[0][1])))


def run(args) -> int:
    check_writable(args.out, folder=True)
    sentences = read_sentences(args.text, args.text_format)
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot write here: {e.strerror or e}", args.out) from None
    if args.spm_size:
        if args.spm_size < 4:
            raise InputError("--spm-size must be at least 4")
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
            f.write("\n".join(sentences) + "\n")
        try:
            prefix = os.path.join(args.out, ".spm-tmp")
            try:
                SpmTokenizer.train(f.name, prefix, args.spm_size, args.spm_type)
            except InputError as e:  # name the user's text, not the temporary copy
                raise InputError(e.detail, args.text) from None
            _move_in_place([(prefix + ".model", os.path.join(args.out, "spm.model")),
                            (prefix + ".vocab", os.path.join(args.out, "spm.vocab"))])
        finally:
            os.unlink(f.name)
        tok = SpmTokenizer(os.path.join(args.out, "spm.model"))
        print(f"wrote {os.path.join(args.out, 'spm.model')} ({tok.size} pieces)")
    else:
        v = WordVocab.build(sentences, args.max_size, args.min_count)
        v.save(os.path.join(args.out, "words.txt"))
        oov = sum(v.count_oov(s) for s in sentences)
        ntok = sum(len(s.split()) for s in sentences)
        print(f"wrote {os.path.join(args.out, 'words.txt')} ({v.size} ids; "
              f"{oov}/{ntok} training tokens become <unk>)")
    return 0
