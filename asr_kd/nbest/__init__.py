"""N-best lists: the data model, readers for every supported format, writers
for the native JSONL and Kaldi archives, and reference handling.

Formats (one module each): ``kaldi``, ``espnet``, ``srilm``, ``json``
(``jsonfmt``), ``nemo``, ``jsonl``; ``io`` dispatches and detects the format.
Every score is a natural-log score, larger is better.
"""
from .io import FORMATS, WRITABLE_FORMATS, detect_format, read_nbest, write_nbest
from .jsonl import write_jsonl
from .kaldi import write_kaldi_folder, write_kaldi_nbest, write_kaldi_scores
from .model import Hyp, NBest, Utterance
from .refs import attach_refs, read_refs

__all__ = [
    "NBest", "Utterance", "Hyp", "FORMATS", "WRITABLE_FORMATS", "detect_format",
    "read_nbest", "write_nbest", "write_jsonl", "write_kaldi_folder", "write_kaldi_nbest",
    "write_kaldi_scores",
    "read_refs", "attach_refs",
]
