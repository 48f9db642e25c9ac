"""Text handling for the proxy judge: pure functions, no model.

Embeddings alone score "Call 911 now" and "No need to call 911" as near-identical, and treat a
criterion's restatement of the question as evidence that the response answered it. These helpers
pull out what embeddings blur: the claim a criterion asks for, negation, numbers, and the content
words a response must add beyond the question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Rubric sources prefix criteria with their category (RaR) or phrase a pitfall as an omission
# ("Fails to advise ..."); the second means "met" when the claim is ABSENT.
_CATEGORY = re.compile(r"^\s*(essential|important|optional|pitfall)\s+criteria\s*:\s*", re.I)
_OMISSION = re.compile(
    r"^\s*(fails? to|does not|doesn't|did not|omits?( to)?|neglects? to|lacks|no mention of|"
    r"is missing|misses)\s+", re.I)
# Leading rubric verbs say how a claim is delivered, not what it is; they only add noise.
_VERB = re.compile(
    r"^\s*(clearly |correctly |explicitly |appropriately |briefly )?(advises?|recommends?|states?|"
    r"explains?|mentions?|suggests?|emphasi[sz]es?|warns?|describes?|notes?|identifies|"
    r"includes?|informs?|encourages?|tells?|says|indicates?|acknowledges?|discusses|lists|"
    r"provides?|clarifies|highlights?|asks?|counsels?|instructs?|reminds?|urges?)\s+"
    r"((the (user|patient|person) )?(that|about|to|of|on|for)\s+)?", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(]?[A-Z0-9])|(?<=;)\s+")
_CLAUSE = re.compile(r"(?<=,)\s+(?=(?:but|so|unless|because|though|although|whereas)\b)", re.I)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?(?:-[a-z0-9]+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
# Every cue below is a general device of English, never a word taken from a labelled case (the
# cases are tuning data; rules copied from their wording fit the cases and nothing else).
# tests/judges/test_proxy_cases.py checks that removed case-specific words ("outdated") stay out.
#
# Negation cues: words that reverse or deny what follows them.
NEGATION_CUES = (
    # closed-class negators and negated auxiliaries/modals
    "not", "no", "never", "none", "neither", "nor", "nothing", "cannot", "no longer",
    "can't", "won't", "don't", "doesn't", "didn't", "isn't", "aren't", "shouldn't", "wouldn't",
    "mustn't",
    # substitution connectives: their complement is the rejected option ("call 911 rather than
    # driving" denies driving). Generic connectives, not topic words, so they stay although each
    # occurs in only one labelled answer; without them "X rather than Y" reads as advising Y.
    "rather than", "instead of",
    # negative-implicative verbs: "avoid X" / "stop X" / "refrain from X" deny X as surely as
    # "don't X" does (matched with any inflection: avoiding, stopped, ...)
    "avoid", "stop", "refrain",
    # morphological negations of the necessity/utility predicates below (un-necessary,
    # need-less, contra-indicated)
    "unnecessary", "needless", "contraindicated",
)
_INFLECTED_CUES = ("avoid", "stop", "refrain")  # the verbs above, matched with their suffixes
_NEGATION = re.compile(
    r"\b(" + "|".join(re.escape(c) + (r"\w*" if c in _INFLECTED_CUES else "") for c in NEGATION_CUES)
    + r")\b|n't\b", re.I)
_STOP = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has
have having he her here hers herself him himself his how i if in into is it its itself just me
more most my myself no nor not of off on once only or other our ours out over own same she should
so some such than that the their them then there these they this those through to too under until
up very was we were what when where which while who whom why will with would you your yours
e g eg etc ie may might must per via like e.g i.e including include includes
advise advises advising recommend recommends recommended recommending state states stating
explain explains explaining mention mentions mentioning suggest suggests suggesting patient user
person response emphasize emphasizes note notes describe describes warn warns appropriate
appropriately clearly example examples typically usually generally often
""".split())


@dataclass(frozen=True)
class Claim:
    """What a criterion asks the response to contain.

    ``absent_is_met`` is True for omission-phrased criteria ("Fails to advise X"): the item is
    met when the response does NOT make the claim.
    """

    text: str
    absent_is_met: bool


def parse_criterion(criterion: str) -> Claim:
    """Strip the category prefix and rubric verb; detect omission phrasing.

    >>> parse_criterion("Pitfall Criteria: Fails to advise calling 911 immediately.")
    Claim(text='calling 911 immediately.', absent_is_met=True)
    >>> parse_criterion("Advises not to drive themselves to the hospital.").text
    'not to drive themselves to the hospital.'
    """
    text = _CATEGORY.sub("", criterion.strip())
    absent = bool(_OMISSION.match(text))
    text = _OMISSION.sub("", text)
    stripped = _VERB.sub("", text, count=1)
    # "States that" on its own would leave nothing; keep the original then.
    return Claim(stripped if len(stripped) > 3 else text, absent)


def split_sentences(text: str) -> list[str]:
    """Sentences, further cut at clause joints where a second claim usually starts.

    >>> split_sentences("Call 911 now. Don't drive; wait for them, but unlock the door.")
    ['Call 911 now.', "Don't drive;", 'wait for them,', 'but unlock the door.']
    """
    out: list[str] = []
    for sent in _SENTENCE_END.split(text.strip()):
        for part in _CLAUSE.split(sent):
            if part.strip():
                out.append(part.strip())
    return out


def negated(text: str) -> bool:
    """Whether a sentence carries a negation or avoidance cue.

    >>> negated("There's no need to call your doctor."), negated("Call your doctor today.")
    (True, False)
    >>> negated("It's best to avoid ibuprofen.")
    True
    """
    return bool(_NEGATION.search(text))


def numbers(text: str) -> set[str]:
    """The numbers in a text, normalised (``2-3`` gives ``{'2', '3'}``).

    >>> sorted(numbers("LDL below 70 mg/dL (1.8 mmol/L)"))
    ['1.8', '70']
    """
    return {n.replace(",", ".") for n in _NUMBER.findall(text)}


def stem(word: str) -> str:
    """A crude suffix stripper: enough to match "screening" with "screened" and "clots" with "clot".

    >>> stem("screening"), stem("screened"), stem("clots"), stem("anticoagulants")
    ('screen', 'screen', 'clot', 'anticoagulant')
    """
    for suffix in ("ations", "ation", "ings", "ing", "edly", "ed", "ies", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def content_stems(text: str) -> set[str]:
    """Stems of the words that carry meaning (stopwords and rubric verbs removed).

    >>> sorted(content_stems("Recommends screening with an ECG and echocardiogram."))
    ['ecg', 'echocardiogram', 'screen']
    """
    words = _WORD.findall(text.lower().replace("\u2019", "'"))
    return {stem(w) for w in words if w not in _STOP and not w.isdigit() and len(w) > 1}


def stems_found(wanted: set[str], have: set[str]) -> int:
    """How many ``wanted`` stems appear in ``have``, allowing a shared 5-letter prefix.

    The prefix rule catches inflections the stemmer misses ("thinner"/"thinners", "ablate"/"ablation").

    >>> stems_found({"anticoagul", "stroke", "aspirin"}, {"anticoagulant", "strokes"})
    2
    """
    prefixes = {h[:5] for h in have if len(h) >= 5}
    return sum(1 for w in wanted if w in have or (len(w) >= 5 and w[:5] in prefixes))


_SCOPE_BREAK = frozenset({",", ";", ":", ".", "!", "?", "but", "unless", "because", "so", "although", "though",
                          "whereas", "if", "until", "while", "since"})
_SCOPE_WORDS = 6
# "X is not needed" / "X doesn't help" deny X itself, although the cue comes after it. The
# predicates are the generic words of necessity and usefulness, not of any topic.
PREDICATES = frozenset("""necessary needed required recommended indicated useful helpful help helps
matter matters important advised point reason need needs work works apply applies effective""".split())
# Adjectives that deny a predicate on their own ("X is unnecessary"): the morphological negations
# of PREDICATES above. (An earlier list also had "outdated", copied from one labelled case.)
DENYING_WORDS = frozenset({"unnecessary", "needless", "pointless", "useless"})
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?(?:-[a-z0-9]+)*|[,;:]|[.!?](?=\s|$)")


def stem_polarity(text: str) -> dict[str, bool]:
    """Content stems mapped to whether a negation cue governs them.

    A cue governs the next few words of its clause, and a second cue in the same scope cancels
    the first ("no need to avoid it" asserts nothing against "it"). A cue that denies the whole
    predicate ("X is not needed", "X doesn't help", "X should be avoided") governs the clause's
    subject too. Polarity is read per word, so an unrelated "don't" elsewhere in a sentence does
    not flip the claim being checked.

    >>> p = stem_polarity("Don't take ibuprofen, but call your doctor.")
    >>> p["ibuprofen"], p["doctor"]
    (True, False)
    >>> stem_polarity("Limiting salt isn't necessary.")["salt"]
    True
    >>> stem_polarity("There's no need to avoid ibuprofen.")["ibuprofen"]
    False
    >>> stem_polarity("Call 911 rather than driving yourself.")
    {'call': False, 'driv': True, 'yourself': True}
    """
    out: dict[str, bool] = {}
    for word, negative in word_polarity(text).items():
        out.setdefault(stem(word), negative)
    return out


def word_polarity(text: str) -> dict[str, bool]:
    """Content words (as written, lower-cased) mapped to whether a negation cue governs their
    first occurrence; :func:`stem_polarity` explains the scope rules.

    >>> word_polarity("Don't take ibuprofen, but call your doctor.")
    {'take': True, 'ibuprofen': True, 'call': False, 'doctor': False}
    """
    out: dict[str, bool] = {}
    for clause in _clauses(text):
        subject_end = _denied_subject_end(clause)
        flips, left = 0, 0
        for i, tok in enumerate(clause):
            if _is_cue(tok):
                flips, left = flips + 1, _SCOPE_WORDS
                continue
            if tok in _STOP or tok.isdigit() or len(tok) < 2:
                continue
            negative = i < subject_end or (left > 0 and flips % 2 == 1)
            out.setdefault(tok, negative)
            left = max(left - 1, 0)
            flips = flips if left else 0
    return out


_MULTIWORD_CUES = frozenset(c for c in NEGATION_CUES if " " in c)


def _clauses(text: str) -> list[list[str]]:
    """Lower-cased tokens per clause; a two-word cue ("rather than") becomes one token."""
    tokens = _TOKEN.findall(text.lower().replace("\u2019", "'"))
    merged: list[str] = []
    for tok in tokens:
        if merged and f"{merged[-1]} {tok}" in _MULTIWORD_CUES:
            merged[-1] = f"{merged[-1]} {tok}"
        else:
            merged.append(tok)
    clauses, cur = [], []
    for tok in merged:
        if tok in _SCOPE_BREAK:
            if cur:
                clauses.append(cur)
            cur = []
        else:
            cur.append(tok)
    return clauses + ([cur] if cur else [])


def _is_cue(tok: str) -> bool:
    return bool(_NEGATION.fullmatch(tok)) or tok.endswith("n't")


def _denied_subject_end(clause: list[str]) -> int:
    """Index of a cue that denies the predicate (so every word before it is negated), else 0."""
    for i, tok in enumerate(clause):
        if tok in DENYING_WORDS or (_is_cue(tok) and i > 0 and clause[i - 1] == "be"):
            return i
        if _is_cue(tok) and any(t in PREDICATES for t in clause[i + 1:i + 4]):
            return i
    return 0
