"""References from Kaldi text and sclite trn, attached to N-best sets."""
from __future__ import annotations

import pytest

from asr_kd.errors import InputError
from asr_kd.nbest import Hyp, NBest, Utterance, attach_refs, read_refs
from nbest_fixtures import write_text


def test_kaldi_text(tmp_path):
    f = write_text(tmp_path / "text", "u-1 HELLO  WORLD\n\nu-2\nu-3 [noise] A\n", crlf=True,
                   bom=True)
    assert read_refs(f) == {"u-1": "HELLO WORLD", "u-2": "", "u-3": "[noise] A"}


def test_trn_plain_and_espnet_speaker_prefix(tmp_path):
    f = write_text(tmp_path / "ref.trn", "HELLO WORLD\t(spk_u1)\n(spk_u2)\n")
    assert read_refs(f) == {"spk_u1": "HELLO WORLD", "spk_u2": ""}
    # ESPnet: (spk-uttid) where uttid starts with spk-; detected without the .trn suffix
    f = write_text(tmp_path / "ref_wer", "A B\t(1272-128104-1272-128104-0000)\n"
                                         "[noise] C (84-121-84-121-0001)\n")
    assert read_refs(f) == {"1272-128104-0000": "A B", "84-121-0001": "[noise] C"}


def test_errors(tmp_path):
    f = write_text(tmp_path / "text", "u1 a\nu2 b\nu1 c\n")
    with pytest.raises(InputError, match=r"text:3: duplicate utterance id 'u1'"):
        read_refs(f)
    f = write_text(tmp_path / "r.trn", "a (u1)\nno id here\n")
    with pytest.raises(InputError, match=r"r\.trn:2: expected 'words \(uttid\)'"):
        read_refs(f)
    for name, body in (("r.json", '{"a": 1}'), ("r", '{"u": "x"}\n'), ("q", '["a", "b"]\n')):
        with pytest.raises(InputError, match="got JSON"):
            read_refs(write_text(tmp_path / name, body))


def test_attach_refs(tmp_path):
    nb = NBest([Utterance(f"u{i}", [Hyp("a")]) for i in range(12)])
    extra = attach_refs(nb, {**{f"u{i}": f"r{i}" for i in range(12)}, "zz": "x"}, "refs")
    assert extra == ["zz"] and nb.utts[3].ref == "r3"
    with pytest.raises(InputError) as e:
        attach_refs(nb, {"u0": "x"}, "refs")
    msg = str(e.value)
    assert msg.startswith("refs: 11 of 12 N-best utterances have no reference: u1, u2,")
    assert "u10, ..." in msg and "u11" not in msg
