"""The shipped rules file recipes/wsj/conf/whisper_to_ptb.rules (Whisper English -> PTB LM text)."""
from __future__ import annotations

import os

import pytest

from asr_kd.textfilter import TextFilter, list_blocks

RULES = os.path.join(os.path.dirname(__file__), os.pardir,
                     "recipes", "wsj", "conf", "whisper_to_ptb.rules")
BLOCKS = ["case", "artifacts", "punct", "clitics", "hyphens", "spelling", "compounds",
          "abbrev", "digit_words", "dates", "numbers", "money", "percent"]


@pytest.fixture(scope="module")
def ptb():
    return TextFilter.from_spec(RULES)


def test_rules_file_parses_into_its_blocks(ptb):
    assert [name for name, _, _ in list_blocks(RULES)] == BLOCKS
    assert ptb.blocks == BLOCKS
    assert all(n > 0 and about for _, n, about in list_blocks(RULES))


@pytest.mark.parametrize("whisper, expected", [
    # Whisper-normalised text (HyPoradise): numbers spelled out, "$" glued, no periods
    ("the company has five hundred japanese managers overseas and expects the number to "
     "rise sixty percent in the next five years",
     "the company has N japanese managers overseas and expects the number to rise N N in "
     "the next five years"),
    ("its biggest was the $one billion purchase of united technologies corporation",
     "its biggest was the $ N billion purchase of united technologies corp."),
    ("it is totaling $five hundred and twenty-five point five million dollars",
     "it is totaling $ N million"),
    ("borrowed one point four million dollars to buy south shore in one thousand, nine "
     "hundred and seventy-three",
     "borrowed $ N million to buy south shore in N"),
    ("the volume was eighteen million, one hundred and ninety thousand shares",
     "the volume was N shares"),
    ("consumer spending surged zero point seven percent and income rose point four percent",
     "consumer spending surged N N and income rose N N"),
    ("closed end funds have been around since the one thousand, nine hundred and twentys",
     "closed-end funds have been around since the 1920s"),
    ("to pay the dividend arrears on july thirty-onest to stock of record november twond",
     "to pay the dividend arrears on july N to stock of record nov. N"),
    ("the average rate on new thirteen week treasury bills increased to six point one two "
     "percent", "the average rate on new 13-week treasury bills increased to N N"),
    ("the financial times thirty share index was three point nine points lower",
     "the financial times 30-share index was N points lower"),
    ("the forty-five year old mister wynn and ms herman said the us and the uk",
     "the 45-year-old mr. wynn and ms. herman said the u.s. and the u.k."),
    ("major us companies and u s exports but let us go", "major u.s. companies and u.s. "
     "exports but let us go"),
    ("stock rose fifteen and three eighths after a two for one split at ten am",
     "stock rose N N after a 2-for-1 split at N a.m."),
    ("brian j kelly of s and p for non defense goods on a short term pre tax basis",
     "brian j. kelly of s&p for non-defense goods on a short-term pretax basis"),
    ("the advisor said the over the counter buyout in june nineteen eighty six",
     "the adviser said the over-the-counter buy-out in june N"),
    # raw Whisper output: case, punctuation, digits and clitics
    ("Mr. Smith said the company's third-quarter profit rose 7.5% to $1.2 billion, or "
     "35 cents a share, in the U.S.",
     "mr. smith said the company 's third-quarter profit rose N N to $ N billion or N cents "
     "a share in the u.s."),
    ("He doesn't think it won't work; we're sure they'll go and I'm done. Can't stop!",
     "he does n't think it wo n't work we 're sure they 'll go and i 'm done ca n't stop"),
    ('The companies\' "results" were No. 1 on Jan. 5, 1990... ok?',
     "the companies ' results were no. N on jan. N N ok"),
    ("A state-of-the-art, non-U.S. co-author of a 30-year bond", "a state of the art "
     "non-u.s. co-author of a 30-year bond"),
])
def test_maps_whisper_sentences_to_ptb(ptb, whisper, expected):
    assert ptb(whisper) == expected


@pytest.mark.parametrize("text", [
    "no one thinks someone will take one of the two seconds or a second look at the one",
    "i am sure it may one day be done and you may go",
    "he misses the doctor and the senator said he was a general",
    "three and a half years in the third quarter of the company",
    "at one point the point is moot",
])
def test_leaves_ordinary_words_alone(ptb, text):
    assert ptb(text) == text


def test_blocks_can_be_left_out():
    text = "mister smith paid $five million dollars"
    assert TextFilter.from_spec(RULES)(text) == "mr. smith paid $ N million"
    assert TextFilter.from_spec(f"{RULES} -abbrev")(text) == "mister smith paid $ N million"
    assert TextFilter.from_spec(f"{RULES} -numbers")(text) == \
        "mr. smith paid $ five million dollars"
    assert TextFilter.from_spec(f"{RULES} +case +numbers")(text) == \
        "mister smith paid $N million dollars"
