"""A small seeded grammar of English sentences for the synthetic speech corpus.

Why a grammar instead of real text: a model fine-tuned for a few CPU minutes must be able to
learn the language, so it is kept small (about 350 words, eight sentence shapes) yet still
produces millions of different sentences — enough that test sentences can be new
combinations the model never heard. Every word is lowercase, without punctuation or
apostrophes, and is a single token in BERT's uncased WordPiece vocabulary, so transcripts are
easy for both a BERT decoder and Whisper's tokenizer.

The same sentences in German (for the speech-translation model): every sentence is drawn as
its parts (:class:`Sentence`), said in English by :meth:`Sentence.english` and in German by
:func:`german_sentence` — articles, adjective endings and weak nouns by gender and case, the
object in the case its verb takes (accusative, or dative for "helfen" and "folgen"), the
auxiliary (haben or sein) agreeing with the subject, and the perfect tense's participle at the
end. :func:`parse_sentence` inverts the English, so :func:`to_german` translates any sentence
of the grammar (the corpus's German columns are made that way).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from s2t_edu.errors import S2TEduError

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


@dataclass(frozen=True)
class NounPhrase:
    """Determiner, optional adjective, noun: ``NounPhrase("a", "old", "dog")`` is "an old dog"."""

    determiner: str  # as listed in DETERMINERS ("a", never "an")
    adjective: str | None
    noun: str

    def english(self) -> list[str]:
        words = [self.noun] if self.adjective is None else [self.adjective, self.noun]
        return [_article(self.determiner, words[0]), *words]


@dataclass(frozen=True)
class Sentence:
    """One sentence of the grammar as its parts, so it can be said in English and in German."""

    subject: str | NounPhrase  # a name, a pronoun or a noun phrase
    verb: str  # a TRANSITIVE_VERBS word (with an object) or an INTRANSITIVE_VERBS word
    object: NounPhrase | None = None
    place: tuple[str, str] | None = None  # (preposition, place): "in the park"
    time: str | None = None  # a TIMES phrase ...
    adverb: str | None = None  # ... or an ADVERBS word (never both)

    def english(self) -> str:
        """Subject, verb, [object], [preposition the place], [time or adverb]."""
        words = self.subject.english() if isinstance(self.subject, NounPhrase) else [self.subject]
        words.append(self.verb)
        if self.object is not None:
            words += self.object.english()
        if self.place is not None:
            words += [self.place[0], "the", self.place[1]]
        words += self.time.split() if self.time else [self.adverb] if self.adverb else []
        return " ".join(words)

    def german(self) -> str:
        """The same sentence in German (see :func:`to_german`)."""
        return german_sentence(self)


def _noun_phrase(rng: random.Random) -> NounPhrase:
    adjective = rng.choice(ADJECTIVES) if rng.random() < 0.5 else None
    noun = rng.choice(NOUNS)
    return NounPhrase(rng.choice(DETERMINERS), adjective, noun)  # drawn last, as it always was


def _subject(rng: random.Random) -> str | NounPhrase:
    kind = rng.random()
    if kind < 0.2:
        return rng.choice(NAMES)
    if kind < 0.4:
        return rng.choice(PRONOUNS)
    return _noun_phrase(rng)


def _ending(rng: random.Random) -> dict:
    """Optional place ("in the park"), time ("last night") or manner ("slowly")."""
    parts = {}
    if rng.random() < 0.5:
        parts["place"] = (rng.choice(PREPOSITIONS), rng.choice(PLACES))
    roll = rng.random()
    if roll < 0.3:
        parts["time"] = rng.choice(TIMES)
    elif roll < 0.45:
        parts["adverb"] = rng.choice(ADVERBS)
    return parts


def random_parts(rng: random.Random) -> Sentence:
    """One :class:`Sentence` of MIN_WORDS..MAX_WORDS English words (what random_sentence says)."""
    while True:
        subject = _subject(rng)
        if rng.random() < 0.7:
            verb, object_ = rng.choice(TRANSITIVE_VERBS), _noun_phrase(rng)
        else:
            verb, object_ = rng.choice(INTRANSITIVE_VERBS), None
        sentence = Sentence(subject, verb, object_, **_ending(rng))
        if MIN_WORDS <= len(sentence.english().split()) <= MAX_WORDS:
            return sentence


def random_sentence(rng: random.Random) -> str:
    """One sentence of MIN_WORDS..MAX_WORDS words: subject, verb, [object], [ending].

    Verbs are in the past tense, so any subject fits any verb (no agreement to get wrong).
    """
    return random_parts(rng).english()


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


# ---------------------------------------------------------------- the same sentences in German
# Each English word list above has its German twin below, with what German grammar needs to
# know: a noun's gender (m, f, n) and, for the weak nouns ("der Löwe, den Löwen"), the form of
# the other cases; a verb's participle, its auxiliary (haben or sein) and its object's case.
# The English past tense becomes the German perfect ("found" -> "hat ... gefunden"): the
# participle moves to the end of the sentence, the word-order change a translating model's
# cross-attention must learn. Lowercase like the English (the uncased tokenizer lowercases).

NOUNS_DE = {  # English: (German, gender, accusative/dative form of a weak noun or None)
    "dog": ("hund", "m", None),
    "cat": ("katze", "f", None),
    "bird": ("vogel", "m", None),
    "horse": ("pferd", "n", None),
    "cow": ("kuh", "f", None),
    "fish": ("fisch", "m", None),
    "mouse": ("maus", "f", None),
    "rabbit": ("hase", "m", "hasen"),
    "duck": ("ente", "f", None),
    "frog": ("frosch", "m", None),
    "lion": ("löwe", "m", "löwen"),
    "tiger": ("tiger", "m", None),
    "bear": ("bär", "m", "bären"),
    "wolf": ("wolf", "m", None),
    "fox": ("fuchs", "m", None),
    "goat": ("ziege", "f", None),
    "pig": ("schwein", "n", None),
    "chicken": ("huhn", "n", None),
    "snake": ("schlange", "f", None),
    "monkey": ("affe", "m", "affen"),
    "man": ("mann", "m", None),
    "woman": ("frau", "f", None),
    "boy": ("junge", "m", "jungen"),
    "girl": ("mädchen", "n", None),
    "child": ("kind", "n", None),
    "teacher": ("lehrer", "m", None),
    "doctor": ("arzt", "m", None),
    "farmer": ("bauer", "m", "bauern"),
    "driver": ("fahrer", "m", None),
    "baker": ("bäcker", "m", None),
    "student": ("student", "m", "studenten"),
    "friend": ("freund", "m", None),
    "mother": ("mutter", "f", None),
    "father": ("vater", "m", None),
    "sister": ("schwester", "f", None),
    "brother": ("bruder", "m", None),
    "king": ("könig", "m", None),
    "queen": ("königin", "f", None),
    "soldier": ("soldat", "m", "soldaten"),
    "nurse": ("pflegerin", "f", None),
    "pilot": ("pilot", "m", "piloten"),
    "artist": ("künstler", "m", None),
    "singer": ("sänger", "m", None),
    "writer": ("autor", "m", None),
    "ball": ("ball", "m", None),
    "book": ("buch", "n", None),
    "cup": ("tasse", "f", None),
    "chair": ("stuhl", "m", None),
    "table": ("tisch", "m", None),
    "box": ("kiste", "f", None),
    "key": ("schlüssel", "m", None),
    "bag": ("tasche", "f", None),
    "hat": ("hut", "m", None),
    "coat": ("mantel", "m", None),
    "shoe": ("schuh", "m", None),
    "pen": ("stift", "m", None),
    "letter": ("brief", "m", None),
    "phone": ("telefon", "n", None),
    "clock": ("uhr", "f", None),
    "lamp": ("lampe", "f", None),
    "door": ("tür", "f", None),
    "window": ("fenster", "n", None),
    "bottle": ("flasche", "f", None),
    "plate": ("teller", "m", None),
    "knife": ("messer", "n", None),
    "spoon": ("löffel", "m", None),
    "bed": ("bett", "n", None),
    "car": ("auto", "n", None),
    "bike": ("fahrrad", "n", None),
    "boat": ("boot", "n", None),
    "train": ("zug", "m", None),
    "bus": ("bus", "m", None),
    "ship": ("schiff", "n", None),
    "plane": ("flugzeug", "n", None),
    "apple": ("apfel", "m", None),
    "cake": ("kuchen", "m", None),
    "bread": ("brot", "n", None),
    "egg": ("ei", "n", None),
    "orange": ("orange", "f", None),
    "banana": ("banane", "f", None),
    "cheese": ("käse", "m", None),
    "flower": ("blume", "f", None),
    "tree": ("baum", "m", None),
    "stone": ("stein", "m", None),
    "shell": ("muschel", "f", None),
    "ring": ("ring", "m", None),
    "coin": ("münze", "f", None),
    "map": ("karte", "f", None),
    "picture": ("bild", "n", None),
    "song": ("lied", "n", None),
    "story": ("geschichte", "f", None),
    "gift": ("geschenk", "n", None),
    "ticket": ("ticket", "n", None),
    "basket": ("korb", "m", None),
    "candle": ("kerze", "f", None),
    "mirror": ("spiegel", "m", None),
    "rope": ("seil", "n", None),
    "kite": ("drachen", "m", None),
    "drum": ("trommel", "f", None),
    "guitar": ("gitarre", "f", None),
    "radio": ("radio", "n", None),
    "camera": ("kamera", "f", None),
    "computer": ("computer", "m", None),
    "blanket": ("decke", "f", None),
    "pillow": ("kissen", "n", None),
    "umbrella": ("schirm", "m", None),
    "wallet": ("geldbörse", "f", None),
    "watch": ("armbanduhr", "f", None),
}
PLACES_DE = {  # always after a preposition, so always dative
    "garden": ("garten", "m"),
    "kitchen": ("küche", "f"),
    "park": ("park", "m"),
    "house": ("haus", "n"),
    "room": ("zimmer", "n"),
    "street": ("straße", "f"),
    "forest": ("wald", "m"),
    "river": ("fluss", "m"),
    "lake": ("see", "m"),
    "city": ("stadt", "f"),
    "school": ("schule", "f"),
    "shop": ("laden", "m"),
    "office": ("büro", "n"),
    "market": ("markt", "m"),
    "field": ("feld", "n"),
    "station": ("bahnhof", "m"),
    "beach": ("strand", "m"),
    "hill": ("hügel", "m"),
    "village": ("dorf", "n"),
    "library": ("bibliothek", "f"),
    "hospital": ("krankenhaus", "n"),
    "church": ("kirche", "f"),
    "bridge": ("brücke", "f"),
    "road": ("weg", "m"),
    "farm": ("bauernhof", "m"),
    "yard": ("hof", "m"),
    "hall": ("halle", "f"),
    "corner": ("ecke", "f"),
}
# Several English adjectives share a German one (big/tall: groß; small/short/little: klein).
ADJECTIVES_DE = {
    "big": "groß",
    "small": "klein",
    "old": "alt",
    "young": "jung",
    "new": "neu",
    "red": "rot",
    "blue": "blau",
    "green": "grün",
    "yellow": "gelb",
    "black": "schwarz",
    "white": "weiß",
    "brown": "braun",
    "happy": "fröhlich",
    "sad": "traurig",
    "tall": "groß",
    "short": "klein",
    "little": "klein",
    "heavy": "schwer",
    "warm": "warm",
    "cold": "kalt",
    "hot": "heiß",
    "quiet": "ruhig",
    "loud": "laut",
    "clean": "sauber",
    "dirty": "schmutzig",
    "soft": "weich",
    "hard": "hart",
    "fast": "schnell",
    "slow": "langsam",
    "bright": "hell",
    "dark": "dunkel",
    "strong": "stark",
    "kind": "nett",
    "funny": "lustig",
    "strange": "seltsam",
    "famous": "berühmt",
    "tired": "müde",
    "hungry": "hungrig",
    "angry": "wütend",
    "busy": "beschäftigt",
    "empty": "leer",
    "full": "voll",
    "wet": "nass",
    "dry": "trocken",
    "lucky": "glücklich",
}
# The stem an ending is added to, where it is not the word itself: "dunkel" -> "dunkle",
# "müde" -> "müde" (the ending's e merges with the word's).
ADJECTIVE_STEMS_DE = {"dunkel": "dunkl", "müde": "müd"}
VERBS_DE = {  # English past: (German participle, auxiliary, case of the object or None)
    "saw": ("gesehen", "haben", "acc"),
    "found": ("gefunden", "haben", "acc"),
    "took": ("genommen", "haben", "acc"),
    "made": ("gemacht", "haben", "acc"),
    "liked": ("gemocht", "haben", "acc"),
    "wanted": ("gewollt", "haben", "acc"),
    "bought": ("gekauft", "haben", "acc"),
    "sold": ("verkauft", "haben", "acc"),
    "opened": ("geöffnet", "haben", "acc"),
    "closed": ("geschlossen", "haben", "acc"),
    "carried": ("getragen", "haben", "acc"),
    "moved": ("bewegt", "haben", "acc"),
    "washed": ("gewaschen", "haben", "acc"),
    "painted": ("gemalt", "haben", "acc"),
    "broke": ("zerbrochen", "haben", "acc"),
    "fixed": ("repariert", "haben", "acc"),
    "dropped": ("fallen lassen", "haben", "acc"),
    "kicked": ("getreten", "haben", "acc"),
    "pushed": ("geschoben", "haben", "acc"),
    "pulled": ("gezogen", "haben", "acc"),
    "watched": ("beobachtet", "haben", "acc"),
    "helped": ("geholfen", "haben", "dat"),  # helfen takes a dative object
    "followed": ("gefolgt", "sein", "dat"),  # folgen: dative object, perfect with sein
    "called": ("angerufen", "haben", "acc"),
    "visited": ("besucht", "haben", "acc"),
    "held": ("gehalten", "haben", "acc"),
    "caught": ("gefangen", "haben", "acc"),
    "threw": ("geworfen", "haben", "acc"),
    "brought": ("gebracht", "haben", "acc"),
    "kept": ("behalten", "haben", "acc"),
    "lost": ("verloren", "haben", "acc"),
    "cleaned": ("geputzt", "haben", "acc"),
    "cooked": ("gekocht", "haben", "acc"),
    "drew": ("gezeichnet", "haben", "acc"),
    "heard": ("gehört", "haben", "acc"),
    "loved": ("geliebt", "haben", "acc"),
    "met": ("getroffen", "haben", "acc"),
    "needed": ("gebraucht", "haben", "acc"),
    "used": ("benutzt", "haben", "acc"),
    "showed": ("gezeigt", "haben", "acc"),
    "picked": ("ausgesucht", "haben", "acc"),
    "touched": ("berührt", "haben", "acc"),
    "chased": ("gejagt", "haben", "acc"),
    "slept": ("geschlafen", "haben", None),
    "ran": ("gerannt", "sein", None),  # verbs of motion and change of state: sein
    "sat": ("gesessen", "haben", None),
    "stood": ("gestanden", "haben", None),
    "waited": ("gewartet", "haben", None),
    "walked": ("gegangen", "sein", None),
    "jumped": ("gesprungen", "sein", None),
    "laughed": ("gelacht", "haben", None),
    "smiled": ("gelächelt", "haben", None),
    "cried": ("geweint", "haben", None),
    "danced": ("getanzt", "haben", None),
    "sang": ("gesungen", "haben", None),
    "played": ("gespielt", "haben", None),
    "worked": ("gearbeitet", "haben", None),
    "fell": ("gefallen", "sein", None),
    "stayed": ("geblieben", "sein", None),
    "swam": ("geschwommen", "sein", None),
    "arrived": ("angekommen", "sein", None),
    "rested": ("ausgeruht", "haben", None),  # reflexive: "sich ausruhen"
    "talked": ("geredet", "haben", None),
}
REFLEXIVE_VERBS_DE = {"rested"}
PREPOSITIONS_DE = {"in": "in", "near": "bei", "behind": "hinter", "by": "neben"}
CONTRACTIONS_DE = {("in", "dem"): "im", ("bei", "dem"): "beim"}  # obligatory in this use
TIMES_DE = {
    "today": "heute",
    "yesterday": "gestern",
    "tonight": "heute abend",
    "this morning": "heute morgen",
    "last night": "gestern abend",
    "every day": "jeden tag",
    "at noon": "mittags",
    "after lunch": "nach dem mittagessen",
    "before dinner": "vor dem abendessen",
    "on monday": "am montag",
    "on friday": "am freitag",
    "on sunday": "am sonntag",
    "last week": "letzte woche",
}
ADVERBS_DE = {
    "quickly": "schnell",
    "slowly": "langsam",
    "quietly": "leise",
    "again": "wieder",
    "carefully": "vorsichtig",
}
# Pronoun: (German, person) -- "you" is the informal singular "du".
PRONOUNS_DE = {
    "i": ("ich", "1sg"),
    "you": ("du", "2sg"),
    "he": ("er", "3sg"),
    "she": ("sie", "3sg"),
    "we": ("wir", "1pl"),
    "they": ("sie", "3pl"),
}
AUXILIARIES_DE = {
    "haben": {"1sg": "habe", "2sg": "hast", "3sg": "hat", "1pl": "haben", "3pl": "haben"},
    "sein": {"1sg": "bin", "2sg": "bist", "3sg": "ist", "1pl": "sind", "3pl": "sind"},
}
REFLEXIVE_PRONOUNS_DE = {"1sg": "mich", "2sg": "dich", "3sg": "sich", "1pl": "uns", "3pl": "sich"}
# Determiners: the stem and which declension it follows. der-words (der, dieser, jener) show
# gender and case on themselves, so an adjective after them takes the weak ending (-e/-en);
# ein-words (ein, mein, ...) have no ending in three places, so the adjective shows it there.
DETERMINERS_DE = {
    "the": ("d", "der"),
    "this": ("dies", "der"),
    "that": ("jen", "der"),
    "a": ("ein", "ein"),
    "my": ("mein", "ein"),
    "your": ("dein", "ein"),
    "his": ("sein", "ein"),
    "her": ("ihr", "ein"),
    "our": ("unser", "ein"),
    "their": ("ihr", "ein"),
}
CASES = ("nom", "acc", "dat")
_DEFINITE = {  # the article itself: "d" + ending would not spell der/die/das
    "nom": {"m": "der", "f": "die", "n": "das"},
    "acc": {"m": "den", "f": "die", "n": "das"},
    "dat": {"m": "dem", "f": "der", "n": "dem"},
}
_DER_WORD_ENDINGS = {  # dieser, diese, dieses ...
    "nom": {"m": "er", "f": "e", "n": "es"},
    "acc": {"m": "en", "f": "e", "n": "es"},
    "dat": {"m": "em", "f": "er", "n": "em"},
}
_EIN_WORD_ENDINGS = {  # ein, eine, ein ...
    "nom": {"m": "", "f": "e", "n": ""},
    "acc": {"m": "en", "f": "e", "n": ""},
    "dat": {"m": "em", "f": "er", "n": "em"},
}
_WEAK_ADJECTIVE_ENDINGS = {  # after a der-word
    "nom": {"m": "e", "f": "e", "n": "e"},
    "acc": {"m": "en", "f": "e", "n": "e"},
    "dat": {"m": "en", "f": "en", "n": "en"},
}
_MIXED_ADJECTIVE_ENDINGS = {  # after an ein-word
    "nom": {"m": "er", "f": "e", "n": "es"},
    "acc": {"m": "en", "f": "e", "n": "es"},
    "dat": {"m": "en", "f": "en", "n": "en"},
}
_ASCII_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def german_determiner(determiner: str, gender: str, case: str) -> str:
    """``german_determiner("a", "m", "acc")`` is "einen"; "the", "f", "dat" is "der"."""
    stem, kind = DETERMINERS_DE[determiner]
    if determiner == "the":
        return _DEFINITE[case][gender]
    endings = _DER_WORD_ENDINGS if kind == "der" else _EIN_WORD_ENDINGS
    return stem + endings[case][gender]


def german_adjective(adjective: str, determiner: str, gender: str, case: str) -> str:
    """The English adjective in German with its ending: weak after der-words, mixed after ein-words."""
    word = ADJECTIVES_DE[adjective]
    endings = _WEAK_ADJECTIVE_ENDINGS if DETERMINERS_DE[determiner][1] == "der" else None
    ending = (endings or _MIXED_ADJECTIVE_ENDINGS)[case][gender]
    return ADJECTIVE_STEMS_DE.get(word, word) + ending


def german_noun_phrase(phrase: NounPhrase, case: str) -> list[str]:
    """``NounPhrase("a", "old", "lion")`` in the accusative: ["einen", "alten", "löwen"]."""
    if case not in CASES:
        raise S2TEduError("unknown case", f"use one of {CASES}", case)
    noun, gender, oblique = NOUNS_DE[phrase.noun]
    if oblique is not None and case != "nom":  # weak nouns: -(e)n outside the nominative
        noun = oblique
    words = [german_determiner(phrase.determiner, gender, case)]
    if phrase.adjective is not None:
        words.append(german_adjective(phrase.adjective, phrase.determiner, gender, case))
    return [*words, noun]


def _german_place(preposition: str, place: str) -> list[str]:
    german, gender = PLACES_DE[place]
    preposition, article = PREPOSITIONS_DE[preposition], _DEFINITE["dat"][gender]
    contracted = CONTRACTIONS_DE.get((preposition, article))
    return [contracted, german] if contracted else [preposition, article, german]


def german_sentence(sentence: Sentence) -> str:
    """The German of a :class:`Sentence`, in the perfect tense, main-clause word order.

    Subject, auxiliary (agreeing with the subject), [reflexive pronoun], [time], [object in the
    verb's case], [adverb], [place, dative], participle: "der hund hat gestern den ball im
    park gefunden" for "the dog found the ball in the park yesterday".
    """
    if isinstance(sentence.subject, NounPhrase):
        subject, person = german_noun_phrase(sentence.subject, "nom"), "3sg"
    elif sentence.subject in PRONOUNS_DE:
        german, person = PRONOUNS_DE[sentence.subject]
        subject = [german]
    else:  # a name: the same in German
        subject, person = [sentence.subject], "3sg"
    participle, auxiliary, case = VERBS_DE[sentence.verb]
    words = [*subject, AUXILIARIES_DE[auxiliary][person]]
    if sentence.verb in REFLEXIVE_VERBS_DE:
        words.append(REFLEXIVE_PRONOUNS_DE[person])
    if sentence.time:
        words += TIMES_DE[sentence.time].split()
    if sentence.object is not None:
        words += german_noun_phrase(sentence.object, case)
    if sentence.adverb:
        words.append(ADVERBS_DE[sentence.adverb])
    if sentence.place is not None:
        words += _german_place(*sentence.place)
    return " ".join([*words, participle])


def ascii_german(text: str) -> str:
    """German with ä, ö, ü, ß written ae, oe, ue, ss (the usual spelling without umlauts).

    Why: BERT's uncased tokenizer (MiniLM's) strips accents, so "grün" comes back as "grun" and
    "schön" as "schon" (another word). Spelled "gruen", the word survives the tokenizer.
    """
    return text.translate(_ASCII_GERMAN)


def _parse_noun_phrase(words: list[str], at: int) -> tuple[NounPhrase, int]:
    if at >= len(words):
        raise _not_grammar(words, "a noun phrase is missing at the end")
    determiner = "a" if words[at] == "an" else words[at]
    if determiner not in DETERMINERS:
        raise _not_grammar(words, f"{words[at]!r} is not a determiner of the grammar")
    adjective = words[at + 1] if at + 1 < len(words) and words[at + 1] in ADJECTIVES else None
    at += 2 if adjective else 1
    if at >= len(words) or words[at] not in NOUNS:
        raise _not_grammar(words, "a noun of the grammar should come here")
    phrase = NounPhrase(determiner, adjective, words[at])
    if phrase.english() != words[at - (2 if adjective else 1) : at + 1]:  # "a old", "an dog"
        raise _not_grammar(words, f"the article is wrong in {' '.join(phrase.english())!r}")
    return phrase, at + 1


def _not_grammar(words: list[str], why: str) -> S2TEduError:
    return S2TEduError(
        f"not a sentence of the course grammar: {why}",
        "use a sentence made by s2t_edu.data.sentences (e.g. from the corpus's text column)",
        " ".join(words),
    )


def parse_sentence(text: str) -> Sentence:
    """The :class:`Sentence` an English sentence of the grammar was made from (its inverse)."""
    words = text.split()
    if not words:
        raise _not_grammar(words, "it is empty")
    if words[0] in NAMES or words[0] in PRONOUNS:
        subject, at = words[0], 1
    else:
        subject, at = _parse_noun_phrase(words, 0)
    if at >= len(words) or words[at] not in TRANSITIVE_VERBS + INTRANSITIVE_VERBS:
        raise _not_grammar(words, "a verb of the grammar should follow the subject")
    verb, at = words[at], at + 1
    object_ = None
    if verb in TRANSITIVE_VERBS:
        object_, at = _parse_noun_phrase(words, at)
    place = None
    if at < len(words) and words[at] in PREPOSITIONS:
        if words[at + 1 : at + 2] != ["the"] or at + 2 >= len(words) or words[at + 2] not in PLACES:
            raise _not_grammar(words, "a place is 'preposition the place', e.g. 'in the park'")
        place, at = (words[at], words[at + 2]), at + 3
    rest = " ".join(words[at:])
    time = rest if rest in TIMES else None
    adverb = rest if rest in ADVERBS else None
    if rest and not (time or adverb):
        raise _not_grammar(words, f"{rest!r} is neither a time phrase nor an adverb")
    return Sentence(subject, verb, object_, place, time, adverb)


def to_german(text: str) -> str:
    """The German translation of an English sentence of the grammar (with umlauts)."""
    return german_sentence(parse_sentence(text))
