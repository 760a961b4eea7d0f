"""JSON N-best files: HyPoradise lists and mlm-scoring objects."""
from __future__ import annotations

import pytest

from asr_kd.errors import InputError
from asr_kd.nbest import read_nbest
from asr_kd.nbest.jsonfmt import read_json
from nbest_fixtures import write_json, write_text


def test_hyporadise(tmp_path):
    f = write_json(tmp_path / "hp.json", [
        {"input": ["a b", "a c", ""], "output": "a b", "score": [-1, -2.5, -9],
         "am_score": [-0.5, -1, -3], "id": "utt-1"},
        {"input": ["x"], "output": "y"},                      # id defaults to the index
        {"input": [], "output": "z"},                         # N = 0
    ])
    nb = read_nbest(f)                                        # detected by .json
    assert [u.utt for u in nb] == ["utt-1", "1", "2"]
    assert [u.ref for u in nb] == ["a b", "y", "z"]
    assert [(h.text, h.scores) for h in nb.utts[0].hyps] == [
        ("a b", {"score": -1.0, "am": -0.5}), ("a c", {"score": -2.5, "am": -1.0}),
        ("", {"score": -9.0, "am": -3.0})]
    assert nb.utts[1].hyps[0].scores == {} and nb.utts[2].hyps == []


def test_mlm_style_numeric_hyp_order(tmp_path):
    hyps = {f"hyp_{i}": {"score": -float(i), "text": f"w{i}"} for i in (10, 2, 1)}
    f = write_json(tmp_path / "am.json", {"u1": {"ref": "w1", **hyps}, "u2": {}})
    nb = read_json(f)
    assert [h.text for h in nb.utts[0].hyps] == ["w1", "w2", "w10"]
    assert nb.utts[0].hyps[2].scores == {"score": -10.0}
    assert nb.utts[0].ref == "w1" and nb.utts[1].hyps == []


@pytest.mark.parametrize("obj,expect", [
    ([{"input": ["a"], "score": [1, 2]}], "list of 1 numbers"),
    ([{"input": ["a"], "score": ["x"]}], "expected a number"),
    ([{"output": "a"}], "entry 0"),
    ([{"input": ["a"], "id": 1}, {"input": ["b"], "id": "1"}], "duplicate id"),
    ({"u": {"hyp_1": {"score": -1}}}, 'string "text"'),
    ({"u": {"best": {"score": -1, "text": "a"}}}, "hyp_1"),
    ({"u": {"hyp_1": {"score": "-1", "text": "a"}}}, "expected a number"),
    (3, "expected a JSON list"),
])
def test_shape_errors(tmp_path, obj, expect):
    f = write_json(tmp_path / "x.json", obj)
    with pytest.raises(InputError, match=expect) as e:
        read_json(f)
    assert str(f) in str(e.value)


def test_bad_json_names_line_and_nan_rejected(tmp_path):
    f = write_text(tmp_path / "x.json", '[\n{"input": ["a"]},\n{"input": ["b"],,}\n]\n',
                   crlf=True)
    with pytest.raises(InputError, match=r"x\.json:3: expected valid JSON"):
        read_json(f)
    f = write_text(tmp_path / "y.json", '[{"input": ["a"], "score": [NaN]}]')
    with pytest.raises(InputError, match="finite"):
        read_json(f)
    f = write_text(tmp_path / "z.json", '{"u": {}, "u": {}}')
    with pytest.raises(InputError, match="duplicate key 'u'"):
        read_json(f)
    (tmp_path / "w.json").write_bytes(b'[\n{"input": ["caf\xe9"]}]')
    with pytest.raises(InputError, match=r"w\.json:2: not valid UTF-8"):
        read_json(tmp_path / "w.json")


def test_bom_and_gzip(tmp_path):
    f = write_text(tmp_path / "x.json.gz", '[{"input": ["a"]}]', bom=True)
    assert read_nbest(f).utts[0].hyps[0].text == "a"
