"""Text filter rules (asr_kd.textfilter): applied before LM scoring only."""
from __future__ import annotations

import pytest

from asr_kd.errors import InputError
from asr_kd.textfilter import TextFilter, list_blocks, split_spec
from asr_kd.textfilter import main as textfilter_main


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


# ---- named patterns (define) ----

def test_define_names_a_pattern_for_later_regex_rules(tmp_path):
    path = tmp_path / "rules.txt"
    path.write_text(
        "define UNIT = one|two|three     # digit words\n"
        "define RUN = {UNIT}(?: {UNIT})+  # defines may use earlier ones\n"
        "re:\\b{RUN}\\b => N\n"
        "re:\\b{UNIT}\\b => n\n"
        "define x => y                    # a word rule that starts with 'define'\n",
        encoding="utf-8")
    f = TextFilter.from_spec(str(path))
    assert len(f.rules) == 3
    assert f("one two three and one or ones define x") == "N and n or ones y"
    # a named pattern is a group: alternatives do not leak into the rule around it
    assert TextFilter.from_spec(r"define A = a|b; re:x{A}y => Z")("xay xby a b") == "Z Z a b"


@pytest.mark.parametrize("line, what", [
    ("re:{NOPE} => x", "undefined pattern name {NOPE}"),
    ("define lower = a", "capitals, digits and '_'"),
    ("define EMPTY =", "empty pattern"),
    ("define BAD = (a", "bad regular expression"),
    ("define LATER = {UNDEFINED}", "undefined pattern name {UNDEFINED}"),
])
def test_bad_define_names_file_and_line(tmp_path, line, what):
    path = tmp_path / "rules.txt"
    path.write_text(f"lowercase\n{line}\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        TextFilter.from_spec(str(path))
    assert str(e.value).startswith(f"{path}:2: ")
    assert what in str(e.value)


def test_braces_that_are_not_names_stay_regex():
    assert TextFilter.from_spec(r"re:a{2} => b")("aa a") == "b a"
    assert TextFilter.from_spec(r"re:\{x\} => y")("{x}") == "y"


# ---- blocks ----

BLOCKS = (
    "lowercase                # preamble: always applied\n"
    "# a plain comment is not a block header\n"
    "define NUM = one|two\n"
    "# [numbers] spelled numbers -> N\n"
    "re:\\b{NUM}\\b => N\n"
    "\n"
    "# [titles] -- mister -> mr.\n"
    "mister => mr.\n"
    "#[tail]\n"
    "re:\\bN\\b => <num>\n"
)


@pytest.fixture
def blocks_file(tmp_path):
    path = tmp_path / "my rules.txt"       # a space in the name: switches still parse
    path.write_text(BLOCKS, encoding="utf-8")
    return str(path)


def test_blocks_are_listed_in_file_order(blocks_file):
    assert list_blocks(blocks_file) == [("numbers", 1, "spelled numbers -> N"),
                                        ("titles", 1, "mister -> mr."), ("tail", 1, "")]
    f = TextFilter.from_spec(blocks_file)
    assert f.blocks == ["numbers", "titles", "tail"]
    assert f("MISTER One") == "mr. <num>"


def test_block_switches_leave_out_or_keep_blocks(blocks_file):
    f = TextFilter.from_spec(f"{blocks_file} -titles")
    assert f.blocks == ["numbers", "tail"]
    assert f("MISTER One") == "mister <num>"
    assert TextFilter.from_spec(f"{blocks_file} -numbers -tail")("MISTER One") == "mr. one"
    # +: only these blocks (the preamble, and defines, always apply)
    f = TextFilter.from_spec(f"{blocks_file}  +numbers ")
    assert f.blocks == ["numbers"]
    assert f("MISTER One") == "mister N"
    assert TextFilter.from_spec(f"{blocks_file} +numbers +tail -tail")("One") == "N"
    assert TextFilter.from_file(blocks_file, skip=["numbers"])("one") == "one"
    assert TextFilter.from_file(blocks_file, only=[])("MISTER One") == "mister one"


def test_unknown_block_is_input_error_listing_blocks(blocks_file):
    with pytest.raises(InputError, match=r"no block \[nums\] \(blocks: numbers, titles, tail\)"):
        TextFilter.from_spec(f"{blocks_file} -nums")
    with pytest.raises(InputError, match=r"no block \[x\]"):
        TextFilter.from_spec(f"{blocks_file} +x")


def test_switches_only_after_an_existing_file(blocks_file):
    assert split_spec(f"{blocks_file} -a +b") == (blocks_file, ["-a", "+b"])
    assert split_spec(blocks_file) == (blocks_file, [])
    # inline rules that end like a switch stay inline rules
    assert TextFilter.from_spec("a => -b")("a") == "-b"
    assert TextFilter.from_spec("x => y +z")("x") == "y +z"
    with pytest.raises(InputError, match="expected 'lowercase'"):
        TextFilter.from_spec("missing.rules -numbers")


def test_duplicate_block_name_is_input_error(tmp_path):
    path = tmp_path / "rules.txt"
    path.write_text("# [a]\nx => y\n# [b]\n# [a] again\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        TextFilter.from_spec(str(path))
    assert str(e.value) == f"{path}:4: block [a] already started at line 1"


def test_module_cli_lists_blocks_and_filters_stdin(blocks_file, capsys, monkeypatch):
    import io
    assert textfilter_main(["--list", blocks_file]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "numbers\t1\tspelled numbers -> N", "titles\t1\tmister -> mr.", "tail\t1\t"]
    monkeypatch.setattr("sys.stdin", io.StringIO("MISTER Two\nTwo\n"))
    assert textfilter_main([f"{blocks_file} -tail"]) == 0
    assert capsys.readouterr().out == "mr. N\nN\n"
    assert textfilter_main([f"{blocks_file} -nope"]) == 2
    assert "no block [nope]" in capsys.readouterr().err


def test_whitespace_is_normalised_once_any_rule_is_given():
    assert TextFilter.from_spec("lowercase")("  A \t B  ") == "a b"
    assert TextFilter.from_spec("x => y")("a  b ") == "a b"
    assert TextFilter.from_spec(r"re:a b => c")("a  b") == "c"   # rules see single spaces
