"""The warm-up teacher: whose reasoning the supervised warm-up imitates, mistakes included.

The paper's warm-up distils reasoning traces from a stronger model. Those traces are not always
right, and RL on gold labels is what corrects what the warm-up copied from them. The benchmark's
own traces are built from its annotations: a teacher that never errs. `TeacherErrors` makes an
imperfect teacher explicit and measurable. For a construction case (``sibling``) it writes
another subject verdict (``unrelated``) in a given share of that case's traces, with the label
its verdicts give, so every trace stays self-consistent. Only the subject step's terminal
verdicts (``related``, ``unrelated``) can be written: they end the reasoning, so no later step
has to be invented.

Spec: ``"sibling=unrelated:0.6,keyword_collision=related:0.6"`` (case=verdict:share, comma
separated; "" is the annotating teacher). Which traces carry a mistake depends on the row id and
the seed only, so a build is reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Mapping

from data_prep.benchmark import CASES, STEP_QUERY, STEP_SUBJECT
from data_prep.criteria import Criteria, load_criteria

# Verdicts that end the reasoning (the later steps are n/a), so a mistake needs no invented steps.
TERMINAL_SUBJECT_VERDICTS = ("related", "unrelated")


@dataclass(frozen=True)
class TeacherErrors:
    """Per construction case: the subject verdict the teacher writes instead, and how often."""

    mistakes: tuple[tuple[str, str, float], ...] = ()
    seed: int = 0

    @classmethod
    def parse(cls, spec: str | None, seed: int = 0) -> "TeacherErrors":
        """Read ``case=verdict:share,...``; a malformed spec raises ValueError naming the item."""
        mistakes = []
        for item in (spec or "").split(","):
            item = item.strip()
            if not item:
                continue
            case, _, rest = item.partition("=")
            verdict, _, share = rest.partition(":")
            case, verdict = case.strip(), verdict.strip()
            if case not in CASES:
                raise ValueError(f"teacher errors {item!r}: unknown case {case!r} (one of {', '.join(CASES)})")
            if verdict not in TERMINAL_SUBJECT_VERDICTS:
                raise ValueError(f"teacher errors {item!r}: the written verdict must be one of "
                                 f"{', '.join(TERMINAL_SUBJECT_VERDICTS)}, got {verdict!r}")
            try:
                rate = float(share)
            except ValueError:
                raise ValueError(f"teacher errors {item!r}: the share after ':' must be a number in [0, 1]") from None
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"teacher errors {item!r}: the share must lie in [0, 1], got {rate}")
            if any(m[0] == case for m in mistakes):
                raise ValueError(f"teacher errors {spec!r}: case {case!r} is given twice")
            mistakes.append((case, verdict, rate))
        return cls(tuple(mistakes), seed)

    @property
    def spec(self) -> str:
        return ",".join(f"{c}={v}:{r:g}" for c, v, r in self.mistakes)

    def __bool__(self) -> bool:
        return any(rate > 0 for _, _, rate in self.mistakes)

    def view(self, row: Mapping[str, Any], criteria: Criteria | str | None = None) -> Mapping[str, Any]:
        """The row as this teacher sees it: a copy with the written verdict and its label, or the row."""
        case = row.get("case")
        for mistaken_case, verdict, rate in self.mistakes:
            if case != mistaken_case or row["step_gold"].get(STEP_SUBJECT) == verdict:
                continue
            if random.Random(f"{self.seed}:{row['id']}").random() >= rate:
                return row
            # The query step stands; the subject verdict ends the reasoning, so the later steps go.
            step_gold = {STEP_QUERY: row["step_gold"][STEP_QUERY], STEP_SUBJECT: verdict}
            label = load_criteria(criteria).label_from_verdicts(step_gold)
            return {**row, "step_gold": step_gold, "label": label, "teacher_mistake": f"{case}->{verdict}"}
        return row
