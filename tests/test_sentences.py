"""The sentence grammar: English unchanged by the German twin, and the German correct."""

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s2t_edu.data import sentences as grammar
from s2t_edu.data.corpus import corpus_plan
from s2t_edu.data.sentences import (
    NounPhrase,
    Sentence,
    ascii_german,
    german_noun_phrase,
    parse_sentence,
    random_parts,
    to_german,
)
from s2t_edu.errors import S2TEduError

ROOT = Path(__file__).resolve().parent.parent
# The last commit before the German grammar: its generator made the committed w2v2-synth-ctc
# checkpoint's corpus and the warm-start benchmark's.
BEFORE_GERMAN = "972cef8"
# sha256 of json.dumps(corpus_plan(size, seed), sort_keys=True), computed by running that
# commit's s2t_edu (git archive 972cef8 s2t_edu | tar -x -C /tmp/old; PYTHONPATH=/tmp/old).
PLAN_SHA256_BEFORE_GERMAN = {
    ("tiny", 0): "d4961149183fa7aa345a41dc8bdae87d47c233257b821abb0e4b7382126bdca4",
    ("tiny", 1): "08b7d555437998e5c542f437023f37907a7efc5a70f232211e657109f4332f8f",
    ("course", 0): "8c03111f5238f6955598404c5dcd6f07bdde2dc2d5c3311e8f562866920845a6",
    ("course", 1): "3359920ff76efd0864ef70e7756486b8df6948a1eedcb7e2620edb29b9f05fed",
    ("large", 0): "3fd63fe52d31a337f3cb3301d589527f1b068bd52097bc1b9af879fa453799ff",
    ("large", 1): "337ee13beb90476deae04614635cb311ac79e536f2b204bf09e77ffc74a73375",
}
_PLAN_HASHES = """
import hashlib, json, sys
from s2t_edu.data.corpus import corpus_plan
for size, seed in json.loads(sys.argv[1]):
    plan = json.dumps(corpus_plan(size, seed), sort_keys=True).encode()
    print(size, seed, hashlib.sha256(plan).hexdigest())
"""


def _plan_sha256(size: str, seed: int) -> str:
    return hashlib.sha256(json.dumps(corpus_plan(size, seed), sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize(("size", "seed"), sorted(PLAN_SHA256_BEFORE_GERMAN))
def test_every_corpus_plan_is_what_it_was_before_the_german_grammar(size, seed):
    """Text, voice, rate and pitch of every clip unchanged, so the audio is byte-identical."""
    assert _plan_sha256(size, seed) == PLAN_SHA256_BEFORE_GERMAN[size, seed]


def test_the_generator_before_the_german_grammar_agrees_when_run(tmp_path):
    """The same check against the old code itself, run in a subprocess from git history."""
    has_commit = subprocess.run(
        ["git", "cat-file", "-e", f"{BEFORE_GERMAN}^{{commit}}"], cwd=ROOT, capture_output=True
    )
    if has_commit.returncode != 0:
        pytest.skip(f"commit {BEFORE_GERMAN} not in this clone (shallow?); the hashes above hold")
    archive = subprocess.run(
        ["git", "archive", BEFORE_GERMAN, "s2t_edu"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive.stdout, check=True)
    cases = [["tiny", 0], ["course", 0], ["course", 1]]
    old = subprocess.run(
        [sys.executable, "-c", _PLAN_HASHES, json.dumps(cases)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    now = [f"{size} {seed} {_plan_sha256(size, seed)}" for size, seed in cases]
    assert old.stdout.split("\n")[:-1] == now


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32))
def test_parse_inverts_english(seed):
    sentence = random_parts(random.Random(seed))
    assert parse_sentence(sentence.english()) == sentence


@pytest.mark.parametrize(
    ("english", "german"),
    [
        # translated by hand, independently of the code
        ("the dog found the ball in the park yesterday", "der hund hat gestern den ball im park gefunden"),
        ("a old lion helped my little sister", None),  # "a old": not a sentence of the grammar
        ("an old lion helped my little sister", "ein alter löwe hat meiner kleinen schwester geholfen"),
        ("they followed the young student", "sie sind dem jungen studenten gefolgt"),
        ("she followed a rabbit", "sie ist einem hasen gefolgt"),
        ("you rested near the station tonight", "du hast dich heute abend beim bahnhof ausgeruht"),
        ("i dropped this white cup", "ich habe diese weiße tasse fallen lassen"),
        ("we saw that dark car by the lake", "wir haben jenes dunkle auto neben dem see gesehen"),
        ("her tired child ran behind the street quickly", "ihr müdes kind ist schnell hinter der straße gerannt"),
        ("our teacher met their happy girl on sunday", "unser lehrer hat am sonntag ihr fröhliches mädchen getroffen"),
        ("john bought a big apple", "john hat einen großen apfel gekauft"),
        ("the farmer saw the bear", "der bauer hat den bären gesehen"),
    ],
)  # fmt: skip
def test_hand_translated_sentences(english, german):
    if german is None:
        with pytest.raises(S2TEduError, match="article is wrong"):
            to_german(english)
    else:
        assert to_german(english) == german


# Textbook paradigms (der/ein declension with adjective endings), written out by hand.
PARADIGMS = {
    ("the", "old", "dog"): ("der alte hund", "den alten hund", "dem alten hund"),
    ("the", "old", "cat"): ("die alte katze", "die alte katze", "der alten katze"),
    ("the", "old", "horse"): ("das alte pferd", "das alte pferd", "dem alten pferd"),
    ("a", "old", "dog"): ("ein alter hund", "einen alten hund", "einem alten hund"),
    ("a", "old", "cat"): ("eine alte katze", "eine alte katze", "einer alten katze"),
    ("a", "old", "horse"): ("ein altes pferd", "ein altes pferd", "einem alten pferd"),
    ("this", None, "horse"): ("dieses pferd", "dieses pferd", "diesem pferd"),
    ("our", "dark", "cat"): ("unsere dunkle katze", "unsere dunkle katze", "unserer dunklen katze"),
    ("my", None, "lion"): ("mein löwe", "meinen löwen", "meinem löwen"),
    ("their", "tired", "boy"): ("ihr müder junge", "ihren müden jungen", "ihrem müden jungen"),
}


@pytest.mark.parametrize(("phrase", "forms"), PARADIGMS.items())
def test_noun_phrases_decline_by_gender_and_case(phrase, forms):
    declined = tuple(" ".join(german_noun_phrase(NounPhrase(*phrase), c)) for c in grammar.CASES)
    assert declined == forms


def test_an_unknown_case_is_an_error():
    with pytest.raises(S2TEduError, match="unknown case"):
        german_noun_phrase(NounPhrase("the", None, "dog"), "gen")


def _german_vocabulary() -> set[str]:
    """Every word the German tables can produce, endings included."""
    words = {"im", "beim", "dem", "der", "den", "die", "das", "jeden", "tag", "letzte"}
    for stem, _ in grammar.DETERMINERS_DE.values():
        words |= {stem + e for e in ("", "e", "er", "es", "en", "em")}
    for adjective in grammar.ADJECTIVES_DE.values():
        stem = grammar.ADJECTIVE_STEMS_DE.get(adjective, adjective)
        words |= {stem + e for e in ("e", "er", "es", "en")}
    for noun, _, oblique in grammar.NOUNS_DE.values():
        words |= {noun, oblique} - {None}
    words |= {place for place, _ in grammar.PLACES_DE.values()}
    words |= set(grammar.PREPOSITIONS_DE.values()) | set(grammar.NAMES)
    words |= {german for german, _ in grammar.PRONOUNS_DE.values()}
    words |= set(grammar.REFLEXIVE_PRONOUNS_DE.values())
    for forms in grammar.AUXILIARIES_DE.values():
        words |= set(forms.values())
    for table in (grammar.TIMES_DE, grammar.ADVERBS_DE):
        words |= {w for phrase in table.values() for w in phrase.split()}
    words |= {w for participle, _, _ in grammar.VERBS_DE.values() for w in participle.split()}
    return words


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32))
def test_german_sentence_structure(seed):
    """Verb second, participle last, auxiliary agreeing, object case, obligatory contractions."""
    sentence = random_parts(random.Random(seed))
    german = to_german(sentence.english()).split()
    participle, auxiliary, case = grammar.VERBS_DE[sentence.verb]
    assert " ".join(german).endswith(participle)
    if isinstance(sentence.subject, NounPhrase):
        subject_words, person = german_noun_phrase(sentence.subject, "nom"), "3sg"
    elif sentence.subject in grammar.PRONOUNS_DE:
        pronoun, person = grammar.PRONOUNS_DE[sentence.subject]
        subject_words = [pronoun]
    else:
        subject_words, person = [sentence.subject], "3sg"
    assert german[: len(subject_words)] == subject_words
    assert german[len(subject_words)] == grammar.AUXILIARIES_DE[auxiliary][person]
    if sentence.object is not None:
        object_words = german_noun_phrase(sentence.object, case)
        text = " ".join(german)
        assert f" {' '.join(object_words)} " in f" {text} "
    assert "in dem" not in " ".join(german) and "bei dem" not in " ".join(german)
    assert set(german) <= _german_vocabulary()


def test_dative_verbs_take_a_dative_object():
    assert grammar.VERBS_DE["helped"][2] == grammar.VERBS_DE["followed"][2] == "dat"
    assert to_german("tom helped the cat") == "tom hat der katze geholfen"


@pytest.mark.parametrize(
    "text", ["", "the dog", "dog found the ball", "the dog found the ball yesterday loudly"]
)
def test_text_outside_the_grammar_is_refused(text):
    with pytest.raises(S2TEduError, match="not a sentence of the course grammar"):
        parse_sentence(text)


def test_ascii_german_spells_umlauts_out():
    assert ascii_german("grüne straße, schön, mädchen, löwe") == (
        "gruene strasse, schoen, maedchen, loewe"
    )
    for row in corpus_plan("course", 0):
        assert ascii_german(to_german(row["text"])).isascii()


def test_the_uncased_tokenizer_strips_umlauts_but_keeps_the_ascii_spelling():
    """Why the translation target is ascii German: MiniLM's tokenizer drops the dots."""
    from transformers import AutoTokenizer

    from s2t_edu.pretrained import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm-l6"))
    roundtrip = tokenizer.decode(tokenizer("grün schön").input_ids, skip_special_tokens=True)
    assert roundtrip == "grun schon"
    for row in corpus_plan("tiny", 0) + corpus_plan("course", 0)[:300]:
        target = ascii_german(to_german(row["text"]))
        ids = tokenizer(target).input_ids
        assert tokenizer.decode(ids, skip_special_tokens=True) == target


def test_a_sentence_says_itself_in_both_languages():
    sentence = Sentence("anna", "slept", place=("in", "house"), time="last night")
    assert sentence.english() == "anna slept in the house last night"
    assert sentence.german() == "anna hat gestern abend im haus geschlafen"
