"""How close a free-text answer is to the official goal statement: a 0 to 1 score (pure Python, no Django).

The built-in lexical method (deterministic, microseconds per answer, no dependency):

1. normalise: Unicode NFKD with accents removed, lower case, anything but letters and digits is a space;
2. tokenise into words, drop English stop words and one-letter words;
3. light stemming (a few suffixes: -ing, -ed, -ies, -s, -ly, -ment, -ness, -ation…; a stem keeps at
   least three letters) and a small table of work synonyms mapped to one stem (client → custom,
   quicker → fast, cut → reduc…), so a paraphrase in other everyday words still meets the goal's;
4. word score: cosine between the two texts' TF-IDF vectors over stems (sublinear term frequency
   1 + ln tf; the inverse document frequency comes from a small built-in table of generic work words,
   e.g. "product", "team", "work", "make", which weigh less than the words that say what the goal is);
5. spelling score: Dice overlap of the character trigrams of the stems (catches "onboard" vs
   "onboarding", typos, compounds);
6. score = 0.7 * word score + 0.3 * spelling score, rounded to 4 decimals.

Identical texts score 1, an empty text (or one made only of stop words) scores 0.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

WORD_WEIGHT = 0.7
TRIGRAM_WEIGHT = 0.3

STOP_WORDS: frozenset[str] = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just let me
    more most my myself no nor not now of off on once only or other ought our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when where which while who whom why
    will with would you your yours yourself yourselves us via per within without across around thing
    things really currently current think believe goal goals aim aims main basically i'm we're it's
    """.split()
)

# Generic work vocabulary (as stems): these say little about *which* goal; their inverse document
# frequency is lower than that of any other word (DEFAULT_IDF).
GENERIC_IDF: dict[str, float] = {
    "product": 0.6,
    "team": 0.6,
    "work": 0.5,
    "make": 0.4,
    "get": 0.4,
    "help": 0.6,
    "new": 0.7,
    "good": 0.5,
    "better": 0.6,
    "company": 0.6,
    "business": 0.7,
    "year": 0.8,
    "quarter": 0.8,
    "build": 0.8,
    "ship": 0.8,
    "feature": 0.9,
    "way": 0.4,
    "people": 0.7,
}
DEFAULT_IDF = 1.5

# Everyday synonyms in goal statements, mapped to one stem (applied after stemming).
SYNONYMS: dict[str, str] = {
    "client": "custom",
    "custom": "custom",
    "user": "custom",
    "buyer": "custom",
    "quick": "fast",
    "quicker": "fast",
    "faster": "fast",
    "speed": "fast",
    "rapid": "fast",
    "rapidly": "fast",
    "swift": "fast",
    "cut": "reduc",
    "lower": "reduc",
    "decreas": "reduc",
    "shrink": "reduc",
    "less": "reduc",
    "fewer": "reduc",
    "drop": "reduc",
    "grow": "increas",
    "growth": "increas",
    "rais": "increas",
    "boost": "increas",
    "expand": "increas",
    "sign": "signup",
    "signup": "signup",
    "regist": "signup",
    "start": "onboard",
    "onboard": "onboard",
    "setup": "onboard",
    "churn": "retent",
    "retain": "retent",
    "keep": "retent",
    "revenu": "revenu",
    "income": "revenu",
    "sale": "revenu",
    "money": "revenu",
    "earn": "revenu",
    "mistak": "error",
    "bug": "error",
    "defect": "error",
    "failur": "error",
    "outag": "error",
    "happi": "satisf",
    "satisfi": "satisf",
    "satisfact": "satisf",
    "delight": "satisf",
    "nps": "satisf",
    "easi": "simpl",
    "easier": "simpl",
    "simpler": "simpl",
    "effortless": "simpl",
    "week": "week",
    "day": "day",
    "minut": "minut",
}

_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("ational", "at"),
    ("ations", ""),
    ("ation", ""),
    ("ements", ""),
    ("ement", ""),
    ("ments", ""),
    ("ment", ""),
    ("nesses", ""),
    ("ness", ""),
    ("ities", ""),
    ("ity", ""),
    ("ingly", ""),
    ("edly", ""),
    ("ings", ""),
    ("ing", ""),
    ("ied", "i"),
    ("ies", "i"),
    ("ed", ""),
    ("ers", ""),
    ("er", ""),
    ("ly", ""),
    ("es", ""),
    ("s", ""),
    ("e", ""),
)
_MIN_STEM = 3
_WORD = re.compile(r"[a-z0-9]+")


def normalise(text: str) -> str:
    """Lower case, accents removed, every run of non-alphanumerics one space."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    return " ".join(_WORD.findall(stripped))


def stem(word: str) -> str:
    """A light suffix-stripping stemmer: the first matching suffix goes if a stem of 3+ letters stays;
    a doubled final consonant left behind is undoubled (running → run)."""
    if word.isdigit() or len(word) <= _MIN_STEM:
        return word
    if word.endswith("ss"):
        return word
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) + len(replacement) >= _MIN_STEM:
            word = word[: len(word) - len(suffix)] + replacement
            if len(word) > _MIN_STEM and word[-1] == word[-2] and word[-1] not in "aeiouls":
                word = word[:-1]
            break
    return word


def stems(text: str) -> list[str]:
    """The content stems of a text, in order (stop words and one-letter words dropped; synonyms merged)."""
    out: list[str] = []
    for word in normalise(text).split():
        if len(word) < 2 or word in STOP_WORDS:
            continue
        stemmed = stem(word)
        out.append(SYNONYMS.get(word, SYNONYMS.get(stemmed, stemmed)))
    return out


def _tfidf(terms: Sequence[str]) -> dict[str, float]:
    counts = Counter(terms)
    return {t: (1.0 + math.log(c)) * GENERIC_IDF.get(t, DEFAULT_IDF) for t, c in counts.items()}


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(weight * b[t] for t, weight in a.items() if t in b)
    norm = math.sqrt(sum(w * w for w in a.values())) * math.sqrt(sum(w * w for w in b.values()))
    return dot / norm if norm else 0.0


def trigrams(terms: Iterable[str]) -> Counter[str]:
    """Character trigrams of each stem padded with spaces (" ab", "abc", "bc ")."""
    grams: Counter[str] = Counter()
    for term in terms:
        padded = f" {term} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams


def _dice(a: Counter[str], b: Counter[str]) -> float:
    total = sum(a.values()) + sum(b.values())
    if not total:
        return 0.0
    return 2.0 * sum((a & b).values()) / total


@dataclass(frozen=True)
class Parts:
    """The two components of a lexical score and the combined score."""

    words: float
    spelling: float
    score: float


def lexical_parts(answer: str, statement: str) -> Parts:
    a, b = stems(answer), stems(statement)
    if not a or not b:
        return Parts(0.0, 0.0, 0.0)
    words = _cosine(_tfidf(a), _tfidf(b))
    spelling = _dice(trigrams(a), trigrams(b))
    score = WORD_WEIGHT * words + TRIGRAM_WEIGHT * spelling
    return Parts(words, spelling, round(min(1.0, max(0.0, score)), 4))


def lexical_similarity(answer: str, statement: str) -> float:
    """0 (nothing in common, or an empty text) … 1 (the same words)."""
    return lexical_parts(answer, statement).score
