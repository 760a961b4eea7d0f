"""One distillation config: KDConfig validation, the student YAML's kd: section,
distill's flags over it, and what the student's config.json records."""
from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch

import asr_kd.distill
from asr_kd.cli import main
from asr_kd.config import kd_config, load_config
from asr_kd.errors import InputError
from asr_kd.ops import KDConfig, TeacherLogits, kd_loss
from test_distill import make_text  # tests/ is on sys.path, as for test_reproducible


def one_line_error(capsys, prefix):
    """distill logs INFO lines before it fails; the error itself is one line."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.split("\n") if ln and " INFO " not in ln and " WARNING " not in ln]
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), err
    return lines[0]


# ------------------------------------------------------------------ KDConfig and kd_loss

def test_validate_names_the_setting_as_asked():
    with pytest.raises(ValueError, match=r"^alpha must be in \[0, 1\], got 1.5$"):
        KDConfig(alpha=1.5).validate()
    with pytest.raises(ValueError, match=r"^kd\.tau must be a finite number > 0, got 0$"):
        KDConfig(tau=0).validate(name=lambda f: f"kd.{f}")
    with pytest.raises(ValueError, match=r"^unknown trust mode 'x'"):
        KDConfig(trust="x").validate()
    with pytest.raises(ValueError, match=r"^unknown --trust 'x'"):
        KDConfig(trust="x").validate(name=lambda f: "--" + f)
    with pytest.raises(ValueError, match="alpha must be a number, got 'half'"):
        KDConfig(alpha="half").validate()
    with pytest.raises(ValueError, match="trust_k must be an integer >= 1, got inf"):
        KDConfig(trust_k=float("inf")).validate()
    KDConfig(alpha=1, tau=3, trust="rank", trust_k=2.0, impl="reference").validate()


def test_kd_loss_takes_the_config_whole():
    torch.manual_seed(0)
    h, w, b, y = torch.randn(6, 4), torch.randn(9, 4), torch.randn(9), torch.randint(0, 9, (6,))
    teacher = TeacherLogits(torch.randn(6, 3), torch.randn(9, 3))
    cfg = KDConfig(alpha=0.3, tau=1.5, trust="margin", trust_beta=0.7, impl="reference")
    whole = kd_loss(h, w, b, y, teacher=teacher, cfg=cfg)
    replaced = kd_loss(h, w, b, y, teacher=teacher,
                       cfg=dataclasses.replace(dataclasses.replace(cfg, alpha=0.9), alpha=0.3))
    assert float(whole) == float(replaced)
    with pytest.raises(TypeError, match="alpha"):   # one calling form: the settings go in cfg
        kd_loss(h, w, b, y, teacher=teacher, alpha=0.3)
    assert float(kd_loss(h, w, b, y, teacher=teacher, cfg=dataclasses.replace(cfg, alpha=0.9))) \
        != float(whole)
    with pytest.raises(ValueError, match=r"^kd_loss: alpha must be in \[0, 1\]"):
        kd_loss(h, w, b, y, teacher=teacher, cfg=KDConfig(alpha=2.0))


# ------------------------------------------------------------------ the YAML kd: section

def write(path, text):
    path.write_text(text)
    return str(path)


def test_kd_section_defaults_yaml_flags(tmp_path):
    conf = write(tmp_path / "s.yaml", "epochs: 1\nkd:\n  alpha: 0.3\n  tau: 4\n  trust: rank\n")
    raw = load_config(conf, {}, sections={"kd"})
    assert raw["kd"] == {"alpha": 0.3, "tau": 4, "trust": "rank"}
    names = {"alpha": "--alpha", "tau": "--tau"}
    cfg = kd_config(raw["kd"], {"tau": 1.5}, names, conf)
    assert cfg == KDConfig(alpha=0.3, tau=1.5, trust="rank")
    assert kd_config(None, {}, names) == KDConfig()
    # a bad file value that a flag replaces is not an error
    assert kd_config({"alpha": 7}, {"alpha": 0.1}, names, conf).alpha == 0.1


@pytest.mark.parametrize("text, match", [
    ("kd:\n  alfa: 0.5\n", r"s\.yaml: unknown options kd\.alfa; known in kd: alpha, "),
    ("kd: 0.5\n", r"s\.yaml: kd: expected a mapping"),
])
def test_kd_section_refuses_bad_shape(tmp_path, text, match):
    conf = write(tmp_path / "s.yaml", text)
    with pytest.raises(InputError, match=match):
        load_config(conf, {}, sections={"kd"})


def test_kd_section_refused_where_not_read(tmp_path):
    conf = write(tmp_path / "s.yaml", "kd:\n  alpha: 0.5\n")
    with pytest.raises(InputError, match=r"s\.yaml: the kd: section .* asr-kd distill only"):
        load_config(conf, {})


def test_kd_config_errors_name_file_or_flag(tmp_path):
    conf = str(tmp_path / "s.yaml")
    names = {"alpha": "--alpha"}
    with pytest.raises(InputError, match=r"s\.yaml: kd\.alpha must be in \[0, 1\], got 2$"):
        kd_config({"alpha": 2}, {}, names, conf)
    with pytest.raises(InputError, match=r"^--alpha must be in \[0, 1\], got -1.0$"):
        kd_config({"tau": 3}, {"alpha": -1.0}, names, conf)
    with pytest.raises(InputError, match=r"s\.yaml: unknown kd\.ensemble 'max'"):
        kd_config({"ensemble": "max"}, {"alpha": 0.5}, names, conf)


# ------------------------------------------------------------------ asr-kd distill end to end

@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("kdcfg")
    tr, va = make_text(d / "train.txt", 40, 0), make_text(d / "valid.txt", 10, 1)
    teacher = str(d / "teacher")
    assert main(["train-lm", "--train", tr, "--valid", va, "--out", teacher, "--epochs", "1",
                 "--hidden-dim", "12", "--embed-dim", "12", "--num-layers", "1", "--quiet"]) == 0
    return d, tr, va, teacher


@pytest.fixture
def seen(monkeypatch):
    """The KDConfig each kd_loss call of the training loop received."""
    cfgs = []
    real = asr_kd.distill.kd_loss

    def spy(*args, **kw):
        cfgs.append(kw["cfg"])
        return real(*args, **kw)
    monkeypatch.setattr(asr_kd.distill, "kd_loss", spy)
    return cfgs


def distill(setup, tmp_path, conf_text, *flags):
    d, tr, va, teacher = setup
    conf = write(tmp_path / "student.yaml",
                 "embed_dim: 8\nhidden_dim: 8\nnum_layers: 1\nepochs: 1\n" + conf_text)
    out = str(tmp_path / "student")
    rc = main(["distill", "--config", conf, "--train", tr, "--valid", va, "--out", out,
               "--teacher", teacher, "--quiet", *flags])
    return rc, out


def test_yaml_kd_section_reaches_the_loss_and_config_json(setup, tmp_path, seen):
    rc, out = distill(setup, tmp_path, "kd:\n  alpha: 0.25\n  tau: 3\n  trust: margin\n"
                      "  trust_beta: 0.5\n  chunk_size: 64\n  impl: torch\n")
    assert rc == 0
    want = KDConfig(alpha=0.25, tau=3, trust="margin", trust_beta=0.5, chunk_size=64,
                    impl="torch")
    assert seen and all(c == want for c in seen)
    with open(os.path.join(out, "config.json")) as f:
        kd = json.load(f)["kd"]
    # the same keys as before the kd: section existed (report.py reads some of them)
    assert set(kd) == {"alpha", "tau", "trust", "trust_k", "trust_beta", "ensemble",
                       "chunk_size", "impl"}
    assert kd == dataclasses.asdict(want)


def test_flags_override_the_yaml(setup, tmp_path, seen):
    rc, out = distill(setup, tmp_path, "kd:\n  alpha: 0.25\n  trust: margin\n",
                      "--alpha", "0.75", "--trust", "prob", "--kd-impl", "reference")
    assert rc == 0
    want = KDConfig(alpha=0.75, trust="prob", impl="reference")
    assert seen and all(c == want for c in seen)
    with open(os.path.join(out, "config.json")) as f:
        assert json.load(f)["kd"] == dataclasses.asdict(want)


@pytest.mark.parametrize("conf_text, flags, what", [
    ("kd:\n  alpha: 1.5\n", [], "student.yaml: kd.alpha must be in [0, 1], got 1.5"),
    ("kd:\n  trust: always\n", [], "student.yaml: unknown kd.trust 'always'"),
    ("kd:\n  tau: 2\n  tua: 3\n", [], "student.yaml: unknown options kd.tua"),
    ("kd:\n  alpha: 0.5\n", ["--tau", "0"], "--tau must be a finite number > 0, got 0.0"),
])
def test_bad_settings_are_one_line_errors(setup, tmp_path, capsys, conf_text, flags, what):
    rc, out = distill(setup, tmp_path, conf_text, *flags)
    assert rc == 2
    assert what in one_line_error(capsys, "asr-kd distill: error:")
    assert not os.path.exists(os.path.join(out, "config.json"))


def test_train_lm_refuses_a_kd_section(setup, tmp_path, capsys):
    d, tr, va, _ = setup
    conf = write(tmp_path / "lm.yaml", "epochs: 1\nkd:\n  alpha: 0.5\n")
    assert main(["train-lm", "--config", conf, "--train", tr, "--valid", va,
                 "--out", str(tmp_path / "lm"), "--quiet"]) == 2
    msg = one_line_error(capsys, "asr-kd train-lm: error:")
    assert conf in msg and "kd: section" in msg
