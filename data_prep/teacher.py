"""The warm-up teacher: whose reasoning the supervised warm-up imitates, mistakes included.

The paper's warm-up distils reasoning traces from a stronger model. Those traces are not always
right, and RL on gold labels is what corrects what the warm-up copied from them. The benchmark's
own traces are built from its annotations: a teacher that never errs. `TeacherErrors` makes an
imperfect teacher explicit and measurable. For a construction case (``sibling``) it writes
another subject verdict (``unrelated``) in a given share of that case's traces, with the label
its verdicts give, so every trace stays self-consistent. Only the subject step's terminal
verdicts (``related``, ``unrelated``) can be written: they end the reasoning, so no later step
has to be invented.

A teacher can also err at the answer alone: for a gold label (``2``) it writes another label
(``3``) in a given share of those traces and keeps every step as annotated (``answer_label``),
so the steps say "violated" and the answer says 3. This is the lenient judge that finds a
business rule broken and does not apply it: the answer no longer follows the label rules from
the steps, and the rewarded label is one token away from what the warm-up learned to write.

Spec: ``"sibling=unrelated:0.6,2=3:0.6"`` (case=verdict:share or label=label:share, comma
separated; "" is the annotating teacher). Which traces carry a mistake depends on the row id and
the seed only, so a build is reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Mapping

from data_prep.benchmark import CASES, STEP_QUERY, STEP_SUBJECT
from data_prep.criteria import Criteria, load_criteria

# The CPU miniature's warm-up teacher: lenient by one level at the answer in 60% of the traces
# labelled 2, 1 and 0 (it finds the broken constraint, the unmet need, the sibling entity, and
# still answers one level up), every step as annotated. A warm-up that imitates it learns the
# steps and, more often than not, the lenient answer: greedy decoding writes the teacher's
# majority answer, and the right one is sampled in about 40% of those cases, so GRPO on gold
# labels has something to correct (docs/results.md).
LENIENT = "2=3:0.6,1=2:0.6,0=1:0.6"

# Verdicts that end the reasoning (the later steps are n/a), so a mistake needs no invented steps.
TERMINAL_SUBJECT_VERDICTS = ("related", "unrelated")


@dataclass(frozen=True)
class TeacherErrors:
    """Per construction case: the subject verdict the teacher writes instead, and how often."""

    mistakes: tuple[tuple[str, str, float], ...] = ()  # (case, subject verdict, share)
    seed: int = 0
    answer_mistakes: tuple[tuple[int, int, float], ...] = ()  # (gold label, written label, share)

    @classmethod
    def parse(cls, spec: str | None, seed: int = 0) -> "TeacherErrors":
        """Read ``case=verdict:share,...``; a malformed spec raises ValueError naming the item."""
        mistakes, answer_mistakes = [], []
        for item in (spec or "").split(","):
            item = item.strip()
            if not item:
                continue
            case, _, rest = item.partition("=")
            verdict, _, share = rest.partition(":")
            case, verdict = case.strip(), verdict.strip()
            if _is_int(case):
                answer_mistakes.append(_answer_mistake(item, case, verdict, share, answer_mistakes))
                continue
            if case not in CASES:
                raise ValueError(f"teacher errors {item!r}: unknown case {case!r} (one of {', '.join(CASES)})")
            if verdict not in TERMINAL_SUBJECT_VERDICTS:
                raise ValueError(f"teacher errors {item!r}: the written verdict must be one of "
                                 f"{', '.join(TERMINAL_SUBJECT_VERDICTS)}, got {verdict!r}")
            rate = _share(item, share)
            if any(m[0] == case for m in mistakes):
                raise ValueError(f"teacher errors {spec!r}: case {case!r} is given twice")
            mistakes.append((case, verdict, rate))
        return cls(tuple(mistakes), seed, tuple(answer_mistakes))

    @property
    def spec(self) -> str:
        return ",".join([f"{c}={v}:{r:g}" for c, v, r in self.mistakes]
                        + [f"{g}={w}:{r:g}" for g, w, r in self.answer_mistakes])

    def __bool__(self) -> bool:
        return any(rate > 0 for *_, rate in (*self.mistakes, *self.answer_mistakes))

    def _draw(self, row: Mapping[str, Any], rate: float) -> bool:
        return random.Random(f"{self.seed}:{row['id']}").random() < rate

    def view(self, row: Mapping[str, Any], criteria: Criteria | str | None = None) -> Mapping[str, Any]:
        """The row as this teacher sees it: a copy with the written verdict and its label, or with the
        annotated steps and another ``answer_label``, or the row."""
        case = row.get("case")
        for gold, written, rate in self.answer_mistakes:
            if int(row["label"]) == gold:
                if not self._draw(row, rate):
                    return row
                return {**row, "answer_label": written, "teacher_mistake": f"{gold}->{written}"}
        for mistaken_case, verdict, rate in self.mistakes:
            if case != mistaken_case or row["step_gold"].get(STEP_SUBJECT) == verdict:
                continue
            if not self._draw(row, rate):
                return row
            # The query step stands; the subject verdict ends the reasoning, so the later steps go.
            step_gold = {STEP_QUERY: row["step_gold"][STEP_QUERY], STEP_SUBJECT: verdict}
            label = load_criteria(criteria).label_from_verdicts(step_gold)
            return {**row, "step_gold": step_gold, "label": label, "teacher_mistake": f"{case}->{verdict}"}
        return row


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _share(item: str, share: str) -> float:
    try:
        rate = float(share)
    except ValueError:
        raise ValueError(f"teacher errors {item!r}: the share after ':' must be a number in [0, 1]") from None
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"teacher errors {item!r}: the share must lie in [0, 1], got {rate}")
    return rate


def _answer_mistake(item: str, gold: str, written: str, share: str,
                    seen: list[tuple[int, int, float]]) -> tuple[int, int, float]:
    """``label=label:share``: the teacher answers ``written`` for rows labelled ``gold``."""
    labels = load_criteria(None).label_values
    if not _is_int(written) or int(gold) not in labels or int(written) not in labels:
        raise ValueError(f"teacher errors {item!r}: an answer mistake maps a label to another label "
                         f"(each one of {', '.join(map(str, labels))}), e.g. '2=3:0.6'")
    if int(gold) == int(written):
        raise ValueError(f"teacher errors {item!r}: the written label must differ from the gold label")
    if any(m[0] == int(gold) for m in seen):
        raise ValueError(f"teacher errors {item!r}: label {gold} is given twice")
    return int(gold), int(written), _share(item, share)
