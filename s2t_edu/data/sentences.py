"""A small seeded grammar of English sentences for the synthetic speech corpus.

Why a grammar instead of real text: a model fine-tuned for a few CPU minutes must be able to
learn the language, so it is kept small (about 350 words, eight sentence shapes) yet still
produces millions of different sentences — enough that test sentences can be new
combinations the model never heard. Every word is lowercase, without punctuation or
apostrophes, and is a single token in BERT's uncased WordPiece vocabulary, so transcripts are
easy for both a BERT decoder and Whisper's tokenizer.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

NAMES = (
    "anna tom maria james lucy peter sarah david emma john kate paul mary mark nina sam lisa "
    "ben rose jack"
).split()
PRONOUNS = "i you he she we they".split()
DETERMINERS = "the a my your his her our their this that".split()
NOUNS = (
    "dog cat bird horse cow fish mouse rabbit duck frog lion tiger bear wolf fox goat pig "
    "chicken snake monkey man woman boy girl child teacher doctor farmer driver baker student "
    "friend mother father sister brother king queen soldier nurse pilot artist singer writer "
    "ball book cup chair table box key bag hat coat shoe pen letter phone clock lamp door "
    "window bottle plate knife spoon bed car bike boat train bus ship plane apple cake bread "
    "egg orange banana cheese flower tree stone shell ring coin map picture song story gift "
    "ticket basket candle mirror rope kite drum guitar radio camera computer blanket pillow "
    "umbrella wallet watch"
).split()
ADJECTIVES = (
    "big small old young new red blue green yellow black white brown happy sad tall short "
    "little heavy warm cold hot quiet loud clean dirty soft hard fast slow bright dark strong "
    "kind funny strange famous tired hungry angry busy empty full wet dry lucky"
).split()
TRANSITIVE_VERBS = (
    "saw found took made liked wanted bought sold opened closed carried moved washed painted "
    "broke fixed dropped kicked pushed pulled watched helped called visited followed held "
    "caught threw brought kept lost cleaned cooked drew heard loved met needed used showed "
    "picked touched chased"
).split()
INTRANSITIVE_VERBS = (
    "slept ran sat stood waited walked jumped laughed smiled cried danced sang played worked "
    "fell stayed swam arrived rested talked"
).split()
PREPOSITIONS = "in near behind by".split()
PLACES = (
    "garden kitchen park house room street forest river lake city school shop office market "
    "field station beach hill village library hospital church bridge road farm yard hall "
    "corner"
).split()
TIMES = (
    "today",
    "yesterday",
    "tonight",
    "this morning",
    "last night",
    "every day",
    "at noon",
    "after lunch",
    "before dinner",
    "on monday",
    "on friday",
    "on sunday",
    "last week",
)
ADVERBS = "quickly slowly quietly again carefully".split()

MIN_WORDS, MAX_WORDS = 5, 10


def _article(determiner: str, next_word: str) -> str:
    # "a old dog" -> "an old dog"; the word lists avoid exceptions such as "hour" or "uniform"
    return "an" if determiner == "a" and next_word[0] in "aeiou" else determiner


def _noun_phrase(rng: random.Random) -> list[str]:
    words = [rng.choice(ADJECTIVES)] if rng.random() < 0.5 else []
    words.append(rng.choice(NOUNS))
    return [_article(rng.choice(DETERMINERS), words[0]), *words]


def _subject(rng: random.Random) -> list[str]:
    kind = rng.random()
    if kind < 0.2:
        return [rng.choice(NAMES)]
    if kind < 0.4:
        return [rng.choice(PRONOUNS)]
    return _noun_phrase(rng)


def _ending(rng: random.Random) -> list[str]:
    """Optional place ("in the park"), time ("last night") or manner ("slowly")."""
    words = []
    if rng.random() < 0.5:
        words += [rng.choice(PREPOSITIONS), "the", rng.choice(PLACES)]
    roll = rng.random()
    if roll < 0.3:
        words += rng.choice(TIMES).split()
    elif roll < 0.45:
        words.append(rng.choice(ADVERBS))
    return words


def random_sentence(rng: random.Random) -> str:
    """One sentence of MIN_WORDS..MAX_WORDS words: subject, verb, [object], [ending].

    Verbs are in the past tense, so any subject fits any verb (no agreement to get wrong).
    """
    while True:
        words = _subject(rng)
        if rng.random() < 0.7:
            words += [rng.choice(TRANSITIVE_VERBS), *_noun_phrase(rng)]
        else:
            words.append(rng.choice(INTRANSITIVE_VERBS))
        words += _ending(rng)
        if MIN_WORDS <= len(words) <= MAX_WORDS:
            return " ".join(words)


def unique_sentences(count: int, seed: int) -> list[str]:
    """``count`` different sentences, the same list for the same seed (order included)."""
    rng = random.Random(f"s2t_edu-sentences-{seed}")  # a str seed is hashed stably by random
    seen: dict[str, None] = {}  # a dict keeps first-seen order, unlike a set
    while len(seen) < count:
        seen.setdefault(random_sentence(rng), None)
    return list(seen)


def vocabulary() -> set[str]:
    """Every word the grammar can produce."""
    words = {"the", "an"}
    for group in (NAMES, PRONOUNS, DETERMINERS, NOUNS, ADJECTIVES, TRANSITIVE_VERBS):
        words.update(group)
    for group in (INTRANSITIVE_VERBS, PREPOSITIONS, PLACES, ADVERBS):
        words.update(group)
    for phrase in TIMES:
        words.update(phrase.split())
    return words


def iter_sentences(seed: int) -> Iterator[str]:
    """An endless stream of sentences (repeats possible), for quick demos."""
    rng = random.Random(f"s2t_edu-sentences-{seed}")
    while True:
        yield random_sentence(rng)
