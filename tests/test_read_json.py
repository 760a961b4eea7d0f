"""fileio.read_json: the one reader of JSON manifests, sidecars, configs and weights."""
import gzip

import pytest

from asr_kd.errors import InputError
from asr_kd.fileio import read_json


def test_reads_an_object(tmp_path):
    p = tmp_path / "m.json"
    p.write_text('{"a": 1, "b": [2]}')
    assert read_json(p, "manifest") == {"a": 1, "b": [2]}


@pytest.mark.parametrize("content, reason", [
    (b'{"a": 1', "Expecting"),                 # truncated
    (b"\xff\xfe{}", "utf-8"),                  # not UTF-8
    (b"[1, 2]", "not a JSON object"),          # valid JSON, not an object
])
def test_malformed_is_one_input_error_naming_the_file(tmp_path, content, reason):
    p = tmp_path / "plan.json"
    p.write_bytes(content)
    with pytest.raises(InputError) as e:
        read_json(p, "plan.json")
    assert str(e.value).startswith(f"{p}: corrupt plan.json (") and reason in str(e.value)
    assert e.value.path == str(p) and "\n" not in str(e.value)


def test_unreadable_and_worded_by_the_caller(tmp_path):
    with pytest.raises(InputError, match=r"unreadable shard sidecar \(.*No such file"):
        read_json(tmp_path / "none.done", "shard sidecar", template="unreadable {what} ({error})")
    p = tmp_path / "w.json"
    p.write_text("7")
    with pytest.raises(InputError, match="expected an object"):
        read_json(p, "weights", not_object="expected an object")


def test_gzip_and_bom(tmp_path):
    p = tmp_path / "w.json.gz"
    p.write_bytes(gzip.compress('\ufeff{"lm": 0.5}'.encode()))
    assert read_json(p, "weights", gz=True, encoding="utf-8-sig") == {"lm": 0.5}
    with pytest.raises(InputError, match="corrupt weights"):   # the BOM needs utf-8-sig
        read_json(p, "weights", gz=True)
    with pytest.raises(InputError, match="no such file"):
        read_json(tmp_path / "none.json.gz", "weights", gz=True)
    p.write_bytes(gzip.compress(b'{"lm": 0.5}')[:-6])            # damaged gzip
    with pytest.raises(InputError, match="corrupt weights"):
        read_json(p, "weights", gz=True)
