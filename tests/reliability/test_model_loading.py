"""Loading models and checkpoints: no pickled code, damage named on one line.

What tests/test_models.py, test_train.py and test_distill.py already cover
(truncated weights, garbage config.json, missing words.txt, words.txt longer
than the model, empty/garbage/truncated train_state.pt, a checkpoint of
another model, --vocab differing from the teacher's) is not repeated.  Here:

* a train_state.pt (or model.safetensors) holding a malicious pickle is refused
  and the code in it never runs;
* weights are safetensors, read without torch.load;
* seeded random bit flips in model.safetensors, config.json, words.txt and
  train_state.pt give a one-line error naming the file, unless the flip left
  the loaded content exactly as it was (zip padding, a descriptive number);
* truncated config.json / words.txt;
* architecture and vocabulary-size mismatches between weights and config;
* teachers or a teacher cache whose tokenizer differs from the student's.
"""
from __future__ import annotations

import json
import os
import pickle
import random
import shutil

import pytest
import torch

import killharness as kh
from asr_kd.cli import main
from asr_kd.errors import InputError
from asr_kd.modeldir import file_crc32, load_model
from asr_kd.checkpoint import CHECKPOINT_FILE, content_crc32 as _content_crc32
from asr_kd.checkpoint import read_checkpoint as _read_state
from asr_kd.vocab import WordVocab

pytestmark = pytest.mark.usefixtures("one_thread")

FLIPS = int(os.environ.get("ASR_KD_FLIPS", "60"))


class CreatesFile:
    """Unpickling this calls ``open(path, "w")``: it would create ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return kh.make_workspace(str(tmp_path_factory.mktemp("loading")), scale=0.25)


def train_args(ws, out, *extra):
    return ["train-lm", "--config", ws.config, "--train", ws.train, "--valid", ws.valid,
            "--out", out, "--quiet", "--device", "cpu", "--epochs", "2", *extra]


@pytest.fixture(scope="module")
def trained(ws):
    """A model folder with a finished model and a mid-training train_state.pt."""
    out = os.path.join(ws.root, "model")
    assert main(train_args(ws, out)) == 0
    return out


@pytest.fixture
def model_dir(trained, tmp_path):
    d = str(tmp_path / "m")
    shutil.copytree(trained, d)
    return d


def one_line_cli_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip() and " INFO " not in ln]
    assert len(lines) == 1 and lines[0].startswith(f"asr-kd {command}: error: "), err
    return lines[0]


# -- pickled code ---------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # (the raw pickle's)
@pytest.mark.parametrize("how", ["torch.save", "raw pickle"])
def test_malicious_train_state_is_refused_and_never_runs(ws, model_dir, tmp_path, capsys, how):
    victim = tmp_path / "pwned"
    evil = {"progress": CreatesFile(str(victim)), "model": {}}
    state = os.path.join(model_dir, CHECKPOINT_FILE)
    with open(state, "wb") as f:
        if how == "torch.save":
            torch.save(evil, f)
        else:
            pickle.dump(evil, f)
    with pytest.raises(InputError) as e:
        _read_state(state)
    assert str(e.value).startswith(f"{state}: refused: ") and "\n" not in str(e.value)
    assert main(train_args(ws, model_dir, "--resume")) == 2
    line = one_line_cli_error(capsys, "train-lm")
    assert line.startswith(f"asr-kd train-lm: error: {state}: refused: the checkpoint holds "
                           "pickled code")
    assert not victim.exists()


def test_pickle_posing_as_weights_is_not_unpickled(model_dir, tmp_path):
    victim = tmp_path / "pwned"
    w = os.path.join(model_dir, "model.safetensors")
    with open(w, "wb") as f:
        torch.save({"embed.weight": CreatesFile(str(victim))}, f)
    with pytest.raises(InputError, match="corrupt or truncated weights") as e:
        load_model(model_dir)
    assert str(e.value).startswith(w + ": ")
    assert not victim.exists()


def test_weights_are_safetensors_read_without_torch_load(model_dir, monkeypatch):
    with open(os.path.join(model_dir, "model.safetensors"), "rb") as f:
        head = f.read(9)
    assert head[8:9] == b"{"  # u64 header length, then the JSON header: no pickle
    assert sorted(os.listdir(model_dir)) == ["config.json", "metrics.csv", "model.safetensors",
                                             "train.log", "train_state.pt", "words.txt"]

    def no_torch_load(*a, **k):
        raise AssertionError("load_model called torch.load")

    monkeypatch.setattr(torch, "load", no_torch_load)
    load_model(model_dir)


# -- bit flips and truncation -----------------------------------------------------------

def flip_bit(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    i = rng.randrange(len(b))
    b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def model_content(model_dir: str):
    """What loading yields: weights, vocabulary and architecture."""
    model, tok, _ = load_model(model_dir)
    return ({k: v.clone() for k, v in model.state_dict().items()}, tok.itos, model.cfg)


def same_content(a, b) -> bool:
    """Same weights, vocabulary and network (init_range and dropout do not change
    the network that was loaded)."""
    def net(cfg):
        return dict(cfg.to_dict(), init_range=None, dropout=None)

    return (a[1] == b[1] and net(a[2]) == net(b[2]) and a[0].keys() == b[0].keys()
            and all(torch.equal(a[0][k], b[0][k]) for k in a[0]))


@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "words.txt"])
def test_flipped_bits_in_model_folder(model_dir, name):
    """Each flip is an error on one line naming the file, or changes nothing loaded.

    Only config.json takes flips silently, and only in descriptive values
    (valid_ppl, size_mb, training options, init_range): the network loaded is
    the same.  Its
    other flips may be reported at the file they make inconsistent (the weights
    for another architecture, the tokenizer file it names): always a file of
    the folder, and "config.json" when the path is not config.json itself.
    """
    path = os.path.join(model_dir, name)
    with open(path, "rb") as f:
        good = f.read()
    original = model_content(model_dir)
    rng = random.Random(f"flip-{name}")
    harmless = 0
    for _ in range(FLIPS):
        with open(path, "wb") as f:
            f.write(flip_bit(good, rng))
        try:
            got = model_content(model_dir)
        except InputError as e:
            msg = str(e)
            assert "\n" not in msg and msg.startswith(model_dir + os.sep), msg
            assert msg.startswith(path + ":") or name == "config.json", msg
            continue
        assert name == "config.json", f"{name}: a flipped bit loaded silently"
        assert same_content(got, original), "a config.json flip changed the model silently"
        harmless += 1
    with open(path, "wb") as f:
        f.write(good)
    assert harmless < FLIPS // 2


def test_flipped_bits_in_train_state(ws, trained, tmp_path, capsys):
    src = os.path.join(trained, CHECKPOINT_FILE)
    with open(src, "rb") as f:
        good = f.read()
    original = _read_state(src)
    want = _content_crc32(original)
    path = str(tmp_path / CHECKPOINT_FILE)
    rng = random.Random("flip-state")
    caught = 0
    for _ in range(FLIPS):
        with open(path, "wb") as f:
            f.write(flip_bit(good, rng))
        try:
            got = _read_state(path)
        except InputError as e:
            assert str(e).startswith(path + ": ") and "\n" not in str(e), str(e)
            caught += 1
            continue
        # a flip the loader does not see changed nothing it loads (zip padding, a name
        # field of the zip's directory): the content is the original's
        assert _content_crc32(got) == want, "a flipped bit changed the checkpoint silently"
    assert caught > FLIPS // 2
    # and through the CLI: one line naming the file
    out = str(tmp_path / "resume")
    shutil.copytree(trained, out)
    with open(os.path.join(out, CHECKPOINT_FILE), "wb") as f:
        f.write(good[: len(good) - 1000])  # truncated
    assert main(train_args(ws, out, "--resume")) == 2
    assert os.path.join(out, CHECKPOINT_FILE) in one_line_cli_error(capsys, "train-lm")


def test_flipped_tensor_byte_in_checkpoint_is_caught(trained, tmp_path):
    """The case torch.load alone misses: a changed byte inside tensor data."""
    src = os.path.join(trained, CHECKPOINT_FILE)
    payload = torch.load(src, weights_only=True)
    w = payload["model"]["embed.weight"]
    with open(src, "rb") as f:
        data = f.read()
    needle = w[3].numpy().tobytes()
    i = data.find(needle)
    assert i > 0
    path = str(tmp_path / CHECKPOINT_FILE)
    with open(path, "wb") as f:
        f.write(data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1:])
    with pytest.raises(InputError, match="does not match the checksum") as e:
        _read_state(path)
    assert str(e.value).startswith(path + ": ")


@pytest.mark.parametrize("name", ["config.json", "words.txt"])
@pytest.mark.parametrize("keep", [0.0, 0.5, 0.9])
def test_truncated_config_or_words(model_dir, capsys, name, keep):
    path = os.path.join(model_dir, name)
    with open(path, "rb") as f:
        good = f.read()
    with open(path, "wb") as f:
        f.write(good[: int(len(good) * keep)])
    with pytest.raises(InputError) as e:
        load_model(model_dir)
    assert path in str(e.value) and "\n" not in str(e.value)


# -- mismatches ---------------------------------------------------------------------------

def edit_config(model_dir: str, edit) -> None:
    path = os.path.join(model_dir, "config.json")
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    edit(cfg)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cfg, f)


@pytest.mark.parametrize("change, says", [
    ({"hidden_dim": 32, "embed_dim": 32}, "config.json says"),   # weights: 16
    ({"hidden_dim": 32}, "missing ['out.weight']"),    # no longer tied: another tensor set
    ({"num_layers": 2}, "'lstm.weight_hh_l1'"),
])
def test_architecture_mismatch_names_both_files(model_dir, change, says):
    edit_config(model_dir, lambda c: c["model"].update(change))
    with pytest.raises(InputError) as e:
        load_model(model_dir)
    msg = str(e.value)
    assert msg.startswith(os.path.join(model_dir, "model.safetensors") + ": ")
    assert says in msg and "config.json" in msg and "do not belong together" in msg, msg


def test_vocabulary_rows_differ_from_words_txt(model_dir):
    """words.txt and config.json agree on V+1 words, the weights have V rows."""
    words = os.path.join(model_dir, "words.txt")
    v = WordVocab.load(words)
    with open(words, "a", encoding="utf-8") as f:
        f.write(f"zebra {v.size}\n")

    def grow(c):
        c["model"]["vocab_size"] = v.size + 1
        c["tokenizer"]["size"] = v.size + 1
        c["checksums"]["words.txt"] = file_crc32(words)

    edit_config(model_dir, grow)
    with pytest.raises(InputError) as e:
        load_model(model_dir)
    msg = str(e.value)
    assert msg.startswith(os.path.join(model_dir, "model.safetensors") + ": ")
    assert f"the weights have {v.size} vocabulary rows" in msg
    assert f"words.txt and config.json have {v.size + 1} ids" in msg


def test_edited_word_in_words_txt_is_caught(model_dir):
    """Same size, one word renamed: ids would silently mean other words."""
    words = os.path.join(model_dir, "words.txt")
    with open(words, encoding="utf-8") as f:
        text = f.read()
    with open(words, "w", encoding="utf-8") as f:
        f.write(text.replace("\ncat ", "\nkat ", 1))
    with pytest.raises(InputError, match="checksum differs from the one in config.json") as e:
        load_model(model_dir)
    assert str(e.value).startswith(words + ": ")


def test_distill_teachers_with_different_tokenizers(ws, model_dir, tmp_path, capsys):
    """An ensemble whose members disagree, and a cache whose vocabulary is not --vocab."""
    other = str(tmp_path / "other")
    other_text = str(tmp_path / "other.txt")
    with open(other_text, "w", encoding="utf-8") as f:
        f.write("completely other words here\n" * 20)
    assert main(["train-lm", "--config", ws.config, "--train", other_text, "--valid", other_text,
                 "--out", other, "--quiet", "--device", "cpu", "--epochs", "1"]) == 0
    capsys.readouterr()
    base = ["distill", "--config", ws.config, "--train", ws.train, "--valid", ws.valid,
            "--quiet", "--device", "cpu", "--epochs", "1"]
    assert main(base + ["--out", str(tmp_path / "s1"), "--teacher", model_dir, other]) == 2
    line = one_line_cli_error(capsys, "distill")
    assert line == (f"asr-kd distill: error: {other}: vocabulary differs from {model_dir}'s; "
                    "ensemble members must share one tokenizer")
    cache = str(tmp_path / "cache")
    assert main(["cache-teacher", "--teacher", model_dir, "--text", ws.train, "--config",
                 ws.config, "--topk", "3", "--out", cache, "--quiet", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(base + ["--out", str(tmp_path / "s2"), "--teacher-cache", cache,
                        "--vocab", other]) == 2
    line = one_line_cli_error(capsys, "distill")
    assert line.startswith(f"asr-kd distill: error: {other}: the student's vocabulary (--vocab) "
                           "differs from the teacher's")


def test_resuming_a_student_of_another_vocabulary(ws, model_dir, tmp_path, capsys):
    """train_state.pt of another vocabulary in --out: refused, named, one line."""
    out = str(tmp_path / "s")
    other_text = str(tmp_path / "other.txt")
    with open(other_text, "w", encoding="utf-8") as f:
        f.write("completely other words here\n" * 20)
    assert main(["train-lm", "--config", ws.config, "--train", other_text, "--valid", other_text,
                 "--out", out, "--quiet", "--device", "cpu", "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["distill", "--config", ws.config, "--train", ws.train, "--valid", ws.valid,
                 "--quiet", "--device", "cpu", "--epochs", "1", "--teacher", model_dir,
                 "--out", out, "--resume"]) == 2
    line = one_line_cli_error(capsys, "distill")
    assert line.startswith(f"asr-kd distill: error: {os.path.join(out, CHECKPOINT_FILE)}: corrupt or "
                           "incompatible checkpoint")
