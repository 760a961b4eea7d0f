"""Text filter rules (asr_kd.textfilter): applied before LM scoring only."""
from __future__ import annotations

import pytest

from asr_kd.errors import InputError
from asr_kd.textfilter import TextFilter


def test_no_rules_is_identity():
    for spec in (None, "", " ; "):
        f = TextFilter.from_spec(spec)
        assert f("Hello  World") == "Hello  World"


def test_lowercase_uppercase():
    assert TextFilter.from_spec("lowercase")("MISTER Quilter") == "mister quilter"
    assert TextFilter.from_spec("lower")("ÉCOLE") == "école"
    assert TextFilter.from_spec("uppercase")("mister quilter's") == "MISTER QUILTER'S"
    assert TextFilter.from_spec("upper")("a") == "A"


def test_word_rules_match_whole_words_only():
    f = TextFilter.from_spec("mister => mr.")
    assert f("mister misters amister mister") == "mr. misters amister mr."
    assert f("mister") == "mr."
    assert f("") == ""
    # several words, any whitespace between them; not inside longer words
    f = TextFilter.from_spec("new york => new_york")
    assert f("in new  york\tcity") == "in new_york city"
    assert f("new yorker") == "new yorker"
    assert f("renew york") == "renew york"
    # consecutive and repeated matches
    assert TextFilter.from_spec("one => N")("one one one") == "N N N"
    # regex metacharacters in a word rule are literal
    f = TextFilter.from_spec("mr. => mister")
    assert f("mr. smith mrx jones") == "mister smith mrx jones"
    # right side is literal text: no backslash escapes or group references
    assert TextFilter.from_spec(r"a b => \1\x")("a b c") == r"\1\x c"
    # case sensitive unless a case rule comes first
    assert TextFilter.from_spec("mister => mr.")("MISTER") == "MISTER"


def test_word_rule_can_delete_words():
    f = TextFilter.from_spec("uh =>")
    assert f("uh i think uh so") == "i think so"
    assert f("uh") == ""


def test_regex_rules():
    f = TextFilter.from_spec(r"re:\b(one|two|three)\b => N")
    assert f("one two thirty three") == "N N thirty N"
    f = TextFilter.from_spec(r"re:(\w+)'S => \1 'S")     # group reference in the template
    assert f("QUILTER'S MANNER") == "QUILTER 'S MANNER"
    f = TextFilter.from_spec(r"re:\bum\b =>")     # whitespace is normalised afterwards
    assert f("so um  well um") == "so well"


def test_inline_rules_apply_in_order():
    assert TextFilter.from_spec("lowercase; mister => mr.")("MISTER SMITH") == "mr. smith"
    # the other order: the word rule sees upper-case text and does not match
    assert TextFilter.from_spec("mister => mr.; lowercase")("MISTER SMITH") == "mister smith"
    assert TextFilter.from_spec(" uppercase ;; a => b ")("a") == "A"


def test_rules_file_with_comments(tmp_path):
    path = tmp_path / "rules.txt"
    path.write_text(
        "# map LibriSpeech output to a PTB-style LM\n"
        "lowercase          # first\n"
        "\n"
        "mister => mr.      # word rule\n"
        "re:\\b(one|two|three)\\b => N  # Python regular expression => replacement\n"
        "re:[#]+ => hash\n",
        encoding="utf-8")
    f = TextFilter.from_spec(str(path))
    assert len(f.rules) == 4
    assert f("MISTER ONE Two ## TWENTY") == "mr. N N hash twenty"


@pytest.mark.parametrize("line, what", [
    ("foo bar", "expected 'lowercase', 'uppercase' or 'FROM => TO'"),
    (" => x", "empty left side"),
    ("re: => x", "empty left side"),
    ("re:(unclosed => x", "bad regular expression"),
    (r"re:(a) => \2", "bad regular expression"),
])
def test_bad_rule_in_file_names_file_and_line(tmp_path, line, what):
    path = tmp_path / "rules.txt"
    path.write_text(f"lowercase\n# comment\n\n{line}\nuppercase\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        TextFilter.from_spec(str(path))
    assert str(e.value).startswith(f"{path}:4: ")
    assert what in str(e.value)
    assert e.value.line == 4


def test_bad_inline_rule_is_input_error():
    with pytest.raises(InputError, match="expected 'lowercase'.*'rulez.txt'"):
        TextFilter.from_spec("rulez.txt")      # not a file, not a rule
    with pytest.raises(InputError, match="bad regular expression"):
        TextFilter.from_spec("lowercase; re:[ => x")
