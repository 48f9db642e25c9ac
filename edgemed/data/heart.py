"""The heart rule: which HealthBench records are about the heart, and deterministic splits.

HealthBench has no cardiology tag, so the subset is chosen by a named, versioned rule over the
user turns. The rule name and the resulting prompt_id list go into every report, so a score
can always be traced to exactly the records it was computed on. Expect a few false positives.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from edgemed.data.schema import RubricRecord
from edgemed.errors import ConfigError

# Cardiac terms (lay and clinical) that rarely appear outside heart topics.
CORE_TERMS = [
    r"heart", r"cardi\w*", r"coronary", r"angina", r"myocard\w*", r"arrhythmi\w*",
    r"atrial", r"ventric\w*", r"a-?fib", r"palpitation\w*", r"tachycardi\w*", r"bradycardi\w*",
    r"hypertensi\w*", r"high blood pressure", r"blood pressure", r"chest pain\w*",
    r"chest (?:tightness|pressure|discomfort)", r"tight(?:ness)? in (?:my|the|his|her) chest",
    r"ecg", r"ekg", r"electrocardiogra\w*", r"echocardiogra\w*", r"stent\w*", r"bypass surgery",
    r"cabg", r"pacemaker\w*", r"defibrillat\w*", r"statin\w*", r"cholesterol", r"ldl",
    r"troponin", r"aort\w*", r"mitral", r"valve (?:disease|replacement|repair)", r"murmur\w*",
    r"stroke", r"anticoagula\w*", r"warfarin", r"apixaban", r"rivaroxaban", r"beta[- ]blocker\w*",
    r"heart failure", r"cardiomyopath\w*", r"endocarditis", r"pericardi\w*", r"syncope",
    r"amlodipine", r"lisinopril", r"losartan", r"metoprolol", r"nitroglycerin", r"digoxin",
]
# Wider: also general vascular/risk terms (more recall, more false positives).
WIDE_TERMS = CORE_TERMS + [r"blood clot\w*", r"dvt", r"embolism", r"hypotensi\w*", r"bp",
                           r"fainting", r"shortness of breath", r"edema", r"swollen (?:ankles|legs)"]


def keyword_rule(terms: Sequence[str]) -> Callable[[RubricRecord], bool]:
    pattern = re.compile(r"\b(?:" + "|".join(terms) + r")\b", re.IGNORECASE)
    return lambda rec: bool(pattern.search(rec.user_text))


RULES: dict[str, Callable[[RubricRecord], bool]] = {
    "heart-keywords-v1": keyword_rule(CORE_TERMS),
    "heart-keywords-wide-v1": keyword_rule(WIDE_TERMS),
}


@dataclass
class HeartSubset:
    """The records a rule selected, with the rule's name and the prompt_id list."""

    records: list[RubricRecord]
    rule: str
    n_total: int

    @property
    def prompt_ids(self) -> list[str]:
        return [r.prompt_id for r in self.records]


def heart_subset(records: Sequence[RubricRecord], rule: str = "heart-keywords-v1") -> HeartSubset:
    """Select heart-related records by a named rule over user turns.

    >>> from edgemed.data.schema import RubricRecord, RubricItem
    >>> recs = [RubricRecord("a", [{"role": "user", "content": "My heart races at night"}], [RubricItem("x", 1)]),
    ...         RubricRecord("b", [{"role": "user", "content": "Best sunscreen?"}], [RubricItem("x", 1)])]
    >>> heart_subset(recs).prompt_ids
    ['a']
    """
    if rule not in RULES:
        raise ConfigError(f"unknown heart rule '{rule}' (known: {', '.join(RULES)})")
    keep = RULES[rule]
    return HeartSubset([r for r in records if keep(r)], rule, len(records))


def split_of(prompt_id: str, eval_fraction: float, seed: int = 0) -> str:
    """``"eval"`` or ``"train"`` from a hash of the id: stable across runs, machines and orderings.

    >>> split_of("abc", 0.0), split_of("abc", 1.0)
    ('train', 'eval')
    """
    h = int(hashlib.sha256(f"{seed}:{prompt_id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "eval" if h < eval_fraction else "train"


def train_eval_split(records: Sequence[RubricRecord], eval_fraction: float = 0.5, seed: int = 0
                     ) -> tuple[list[RubricRecord], list[RubricRecord]]:
    """Deterministic split with disjoint prompt_ids (duplicates of an id land on the same side)."""
    if not 0.0 <= eval_fraction <= 1.0:
        raise ConfigError(f"eval_fraction must be in [0, 1], got {eval_fraction}")
    train, ev = [], []
    for r in records:
        (ev if split_of(r.prompt_id, eval_fraction, seed) == "eval" else train).append(r)
    return train, ev
