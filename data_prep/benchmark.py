"""Offline relevance benchmark: RedNote-style (query, note) pairs labelled by construction.

Every pair is built from a plan, not scored after the fact: the query names a
subject entity, an intent and 0-3 explicit constraints; the note is written
about a chosen entity (the same one, a sibling in its category, an entity of
another domain, or a keyword-collision partner), with a chosen intent and
stated facts that satisfy or violate each constraint. The label and the
per-step gold verdicts follow from the plan (see `data_prep/criteria`), never
from word overlap; hard cases (collisions, siblings, passing mentions,
single-constraint violations) are planted on purpose.

Splits: train, val and test_random share one distribution; test_longtail uses
only held-out subjects (whole domains, categories and single entities, see
`benchmark_lexicon`) and over-samples intent x constraint compositions that
training never sees. `check_no_leakage` proves the separation and runs on
every generation.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from tqdm import tqdm

from data_prep import benchmark_lexicon as lex
from data_prep.benchmark_lexicon import ENTITIES, Entity, pick
from data_prep.criteria import DEFAULT_CRITERIA, Criteria, CriteriaError, load_criteria
from data_prep.ranking import RANK_SPLITS, generate_ranking_split
from data_prep.traces import build_trace
from data_prep.writer import OutputError, write_splits
from evaluation.arguments import non_negative_int, positive_int

SPLITS = ("train", "val", "test_random", "test_longtail")
LONGTAIL_SPLITS = ("test_longtail", *(s for s, held_out in RANK_SPLITS.items() if held_out))
# The annotation schema is the default criteria: its label scale (most relevant first) and the
# steps the generator annotates, which must be the schema's (an edited file fails here, loudly).
SCHEMA = load_criteria(DEFAULT_CRITERIA)
LABELS = tuple(sorted(SCHEMA.label_values, reverse=True))
STEP_QUERY, STEP_SUBJECT, STEP_NEED, STEP_CONSTRAINTS = SCHEMA.step_names
# How a row is constructed (its `case` field); `_SplitGenerator._case` picks one per label.
CASES = ("exact_match", "constraint_violated", "other_intent", "passing_mention", "sibling",
         "keyword_collision", "unrelated")

# Note intents that clearly do NOT serve a query intent. Pairs that partly
# overlap (review vs comparison, recommendation vs inspiration, purchase vs
# place, ...) are left out so that "unmet" is never debatable.
UNMET_INTENTS: dict[str, tuple[str, ...]] = {
    "how-to": ("place", "purchase", "comparison", "recommendation"),
    "recommendation": ("how-to", "purchase"),
    "review": ("how-to", "place", "purchase", "inspiration"),
    "place": ("how-to", "review", "comparison", "inspiration"),
    "purchase": ("how-to", "inspiration"),
    "comparison": ("how-to", "place", "purchase", "inspiration"),
    "inspiration": ("place", "purchase", "comparison", "review"),
}
# How many explicit constraints a query carries, per label.
_N_CONSTRAINTS = {
    3: ((0, 1, 2, 3), (0.3, 0.35, 0.25, 0.1)),
    2: ((1, 2, 3), (0.5, 0.35, 0.15)),
    "other": ((0, 1, 2, 3), (0.35, 0.35, 0.2, 0.1)),
}
# Share of long-tail rows forced onto a composition training never sees.
_LONGTAIL_COMPOSITION_RATE = 0.4


@dataclass
class BenchmarkConfig:
    seed: int = 0
    train_size: int = 20000
    val_size: int = 1000
    test_random_size: int = 2000
    test_longtail_size: int = 2000
    pool_size: int = 0
    rank_queries: int = 100  # per ranking split (data_prep.ranking)
    rank_candidates: int = 10
    sft_size: int = 2000
    lang: str = "en"
    criteria: str = "default"  # used for the SFT traces only
    progress: bool = True

    def sizes(self) -> dict[str, int]:
        return {"train": self.train_size, "val": self.val_size, "test_random": self.test_random_size,
                "test_longtail": self.test_longtail_size}


# ---------------------------------------------------------------------------
# Constraint values
# ---------------------------------------------------------------------------
def _price_text(domain: str, amount: int, lang: str) -> str:
    return lex.DOMAINS[domain].price.text(amount, lang)


def _caps(domain: str, lang: str) -> tuple[int, ...]:
    return lex.DOMAINS[domain].price.caps[lang]


def _below(cap: int, rng: random.Random) -> int:
    x = int(cap * rng.uniform(0.45, 0.92))
    return x - x % 10 + 9 if x >= 20 and x - x % 10 + 9 < cap else max(1, x)


def _above(cap: int, rng: random.Random) -> int:
    x = int(cap * rng.uniform(1.4, 3.0))
    return x - x % 10 + 9 if x >= 20 else x + 1


# ---------------------------------------------------------------------------
# Generation of one split
# ---------------------------------------------------------------------------
class _SplitGenerator:
    """Plans and renders rows for one split from its pools of entities."""

    def __init__(self, lang: str, rng: random.Random, longtail: bool):
        self.lang, self.rng, self.longtail = lang, rng, longtail
        ids = sorted(ENTITIES)
        self.subjects = [e for e in ids if lex.is_heldout(e) == longtail]
        # Notes of training-side splits never show a held-out entity; long-tail
        # notes may show any entity.
        self.note_pool = ids if longtail else self.subjects
        self.by_category: dict[str, list[str]] = {}
        for e in self.note_pool:
            self.by_category.setdefault(ENTITIES[e].category, []).append(e)
        subj = set(self.subjects)
        self.collisions = [(e, other, kw) for e in self.subjects
                           for other, kw in lex.collision_of(e, lang) if other in subj]
        self.forbidden = set() if longtail else set(lex.HELDOUT_COMPOSITIONS)

    # -- planning -------------------------------------------------------------
    def _case(self, label: int) -> str:
        r = self.rng.random()
        if label == 3:
            return "exact_match"
        if label == 2:
            return "constraint_violated"
        if label == 1:
            return "other_intent" if r < 0.55 else "passing_mention"
        if label == 0:
            return "sibling"
        return "keyword_collision" if self.collisions and r < 0.4 else "unrelated"

    def _query_shape(self, ent: Entity, label: int) -> tuple[str, list[str]]:
        rng = self.rng
        types = list(ent.constraint_types)
        values, weights = _N_CONSTRAINTS.get(label, _N_CONSTRAINTS["other"])
        k = min(rng.choices(values, weights)[0], len(types))
        forced: str | None = None
        if self.longtail and rng.random() < _LONGTAIL_COMPOSITION_RATE:
            options = [(i, t) for i, t in lex.HELDOUT_COMPOSITIONS if t in types]
            if options:
                intent, forced = rng.choice(options)
                k = max(k, 1)
        if forced is None:
            intent = rng.choice(lex.INTENTS)
        allowed = [t for t in types if (intent, t) not in self.forbidden and t != forced]
        chosen = ([forced] if forced else []) + rng.sample(allowed, min(len(allowed), k - (1 if forced else 0)))
        if label == 2 and not chosen:  # every type forbidden for this intent: pick another intent
            return self._query_shape(ent, label)
        rng.shuffle(chosen)
        return intent, chosen

    def _sibling(self, ent_id: str, exclude: Iterable[str]) -> str | None:
        excl = set(exclude) | {ent_id}
        options = [e for e in self.by_category.get(ENTITIES[ent_id].category, []) if e not in excl]
        return self.rng.choice(options) if options else None

    def _other_domain(self, ent_id: str) -> str:
        ent = ENTITIES[ent_id]
        partners = {o for o, _ in lex.collision_of(ent_id, "en") + lex.collision_of(ent_id, "zh")}
        while True:
            cand = self.rng.choice(self.note_pool)
            if ENTITIES[cand].domain != ent.domain and cand not in partners:
                return cand

    def _query_value(self, ent: Entity, ctype: str) -> dict:
        rng, lang, dom = self.rng, self.lang, lex.DOMAINS[ent.domain]
        if ctype == "place":
            return {"type": ctype, "key": rng.randrange(len(lex.CITIES))}
        if ctype == "price":
            return {"type": ctype, "key": rng.choice(_caps(ent.domain, lang)), "domain": ent.domain}
        if ctype == "audience":
            return {"type": ctype, "key": rng.randrange(len(dom.audiences)), "domain": ent.domain}
        if ctype == "time":
            return {"type": ctype, "key": rng.randrange(len(lex.SEASONS))}
        return {"type": ctype, "key": rng.randrange(len(dom.attributes)), "domain": ent.domain}

    def _fact(self, q: dict, note_domain: str, mode: str) -> dict:
        """The note's value for a query constraint: mode is satisfy, violate or free."""
        rng, t = self.rng, q["type"]
        if mode == "free":
            # Same-domain notes often agree with the query by chance: hard negatives.
            same_dims = t in ("place", "time") or q.get("domain") == note_domain
            if same_dims and rng.random() < 0.5:
                mode = "satisfy"
            elif same_dims:
                mode = "violate"
            else:
                return self._random_fact(t, note_domain)
        if t == "price":
            cap = q["key"]
            amount = _below(cap, rng) if mode == "satisfy" else _above(cap, rng)
            return {"type": t, "key": amount, "domain": note_domain}
        if t == "attribute":
            return {"type": t, "key": q["key"], "yes": mode == "satisfy", "domain": note_domain}
        if mode == "satisfy":
            return {**q, "domain": note_domain}
        size = {"place": len(lex.CITIES), "time": len(lex.SEASONS),
                "audience": len(lex.DOMAINS[note_domain].audiences)}[t]
        other = rng.choice([i for i in range(size) if i != q["key"]])
        return {"type": t, "key": other, "domain": note_domain, "hint": rng.random() < 0.3}

    def _random_fact(self, t: str, domain: str) -> dict:
        rng, dom = self.rng, lex.DOMAINS[domain]
        if t == "place":
            return {"type": t, "key": rng.randrange(len(lex.CITIES)), "domain": domain}
        if t == "price":
            cap = rng.choice(_caps(domain, self.lang))
            return {"type": t, "key": _below(cap, rng) if rng.random() < 0.5 else _above(cap, rng), "domain": domain}
        if t == "audience":
            return {"type": t, "key": rng.randrange(len(dom.audiences)), "domain": domain}
        if t == "time":
            return {"type": t, "key": rng.randrange(len(lex.SEASONS)), "domain": domain}
        return {"type": t, "key": rng.randrange(len(dom.attributes)), "yes": rng.random() < 0.5,
                "domain": domain}

    # -- one row ---------------------------------------------------------------
    def make(self, label: int, plan: dict | None = None) -> dict:
        """One row; with a query ``plan`` (`data_prep.ranking`) only the note is drawn."""
        rng, lang = self.rng, self.lang
        case = self._case(label)
        keyword = None
        collisions = self.collisions if plan is None else [c for c in self.collisions if c[0] == plan["entity"]]
        if case == "keyword_collision" and not collisions:
            case = "unrelated"
        if case == "keyword_collision":
            subject_id, note_id, keyword = rng.choice(collisions)
        else:
            subject_id = rng.choice(self.subjects) if plan is None else plan["entity"]
        ent = ENTITIES[subject_id]
        if plan is None:
            intent, ctypes = self._query_shape(ent, label)
            compare_id = self._sibling(subject_id, ()) if intent == "comparison" else None
            query_values = [self._query_value(ent, t) for t in ctypes]
        else:
            intent, ctypes, compare_id, query_values = (plan[k] for k in ("intent", "ctypes", "compare_entity",
                                                                          "query_values"))

        # The note's subject (a collision already fixed it) and intent, by case.
        if case in ("exact_match", "constraint_violated", "other_intent"):
            note_id = subject_id
        elif case in ("passing_mention", "unrelated"):
            note_id = self._other_domain(subject_id)
        elif case == "sibling":
            note_id = self._sibling(subject_id, [compare_id] if compare_id else [])
            if note_id is None:  # category too small once the comparison partner is out
                return self.make(label, plan)
        if case in ("exact_match", "constraint_violated"):
            note_intent = intent
        elif case == "other_intent":
            note_intent = rng.choice(UNMET_INTENTS[intent])
        elif case in ("sibling", "unrelated", "keyword_collision") and rng.random() < 0.6:
            note_intent = intent  # same genre as asked: only the subject differs
        else:
            note_intent = rng.choice(lex.INTENTS)
        note_partner = None
        if note_intent == "comparison":
            if note_id == subject_id and intent == "comparison":
                note_partner = compare_id
            else:
                note_partner = self._sibling(note_id, [subject_id, compare_id or subject_id])
                if note_partner is None:
                    note_intent = rng.choice([i for i in lex.INTENTS if i != "comparison"
                                              and (case != "other_intent" or i in UNMET_INTENTS[intent])])

        # Facts the note states about the query's constraints.
        note_dom = ENTITIES[note_id].domain
        violate: set[int] = set()
        if case == "constraint_violated":
            n_bad = 1 if len(query_values) == 1 or rng.random() < 0.75 else rng.randint(2, len(query_values))
            violate = set(rng.sample(range(len(query_values)), n_bad))
        facts: list[dict] = []
        for i, q in enumerate(query_values):
            if case in ("exact_match", "constraint_violated"):
                facts.append(self._fact(q, note_dom, "violate" if i in violate else "satisfy"))
            else:
                facts.append(self._fact(q, note_dom, "free"))
        # A few extra facts the query did not ask about, so stated facts do not
        # reveal which constraints were asked.
        extra_types = [t for t in ENTITIES[note_id].constraint_types if t not in ctypes]
        for t in rng.sample(extra_types, min(len(extra_types), rng.choice((0, 1, 1, 2)))):
            facts.append(self._random_fact(t, note_dom))

        renderer = _Renderer(lang, rng)
        query = renderer.query(ent, intent, compare_id, query_values)
        mention = subject_id if case == "passing_mention" else None
        title, content, tags = renderer.note(ENTITIES[note_id], note_intent, note_partner, facts, mention,
                                             query_values)
        constraints = []
        for q, f in zip(query_values, facts):
            constraints.append({
                "type": q["type"],
                "value": renderer.query_value_text(q),
                "note_value": renderer.fact_text(f),
                "satisfied": _satisfies(q, f),
            })

        step_gold = _step_gold(case, intent, constraints)
        return {
            "query": query, "title": title, "content": content, "tags": tags,
            "label": label, "step_gold": step_gold,
            "domain": ent.domain, "category": ent.category, "entity": subject_id,
            "subject": ent.name(lang), "intent": intent, "constraints": constraints,
            "compare_entity": compare_id,
            "compare_with": ENTITIES[compare_id].name(lang) if compare_id else None,
            "note_entity": note_id, "note_domain": note_dom, "note_category": ENTITIES[note_id].category,
            "note_subject": ENTITIES[note_id].name(lang), "note_intent": note_intent,
            "case": case, "collision_keyword": keyword, "lang": lang,
        }


def _satisfies(q: dict, f: dict | None) -> bool | None:
    if f is None:
        return None
    if q["type"] == "price":
        return f["key"] <= q["key"]
    if q["type"] == "attribute":
        return bool(f.get("yes")) and f["key"] == q["key"] and f["domain"] == q["domain"]
    if q["type"] == "audience" and f["domain"] != q["domain"]:
        return False
    return f["key"] == q["key"]


def _step_gold(case: str, intent: str, constraints: list[dict]) -> dict[str, str]:
    gold = {STEP_QUERY: intent}
    if case in ("keyword_collision", "unrelated"):
        gold[STEP_SUBJECT] = "unrelated"
        return gold
    if case == "sibling":
        gold[STEP_SUBJECT] = "related"
        return gold
    gold[STEP_SUBJECT] = "exact"
    if case in ("other_intent", "passing_mention"):
        gold[STEP_NEED] = "unmet"
        return gold
    gold[STEP_NEED] = "met"
    if not constraints:
        gold[STEP_CONSTRAINTS] = "none"
    elif all(c["satisfied"] for c in constraints):
        gold[STEP_CONSTRAINTS] = "satisfied"
    else:
        gold[STEP_CONSTRAINTS] = "violated"
    return gold


# ---------------------------------------------------------------------------
# Text rendering
# ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _tag(text: str, lang: str) -> str:
    if lang == "zh":
        return re.sub(r"\s+", "", text)
    return re.sub(r"[^0-9a-z]", "", text.lower())


class _Renderer:
    def __init__(self, lang: str, rng: random.Random):
        self.lang, self.rng = lang, rng

    def _p(self, text: lex.Text) -> str:
        return pick(text, self.lang)

    def _choice(self, items):
        return self.rng.choice(items)

    # -- values ----------------------------------------------------------------
    def query_value_text(self, q: dict) -> str:
        t = q["type"]
        if t == "place":
            return self._p(lex.CITIES[q["key"]])
        if t == "price":
            return _price_text(q["domain"], q["key"], self.lang)
        if t == "audience":
            return self._p(lex.DOMAINS[q["domain"]].audiences[q["key"]])
        if t == "time":
            return self._p(lex.SEASONS[q["key"]])
        return self._p(lex.DOMAINS[q["domain"]].attributes[q["key"]].query)

    def fact_text(self, f: dict | None) -> str | None:
        if f is None:
            return None
        t = f["type"]
        if t == "attribute":
            attr = lex.DOMAINS[f["domain"]].attributes[f["key"]]
            return self._p(attr.note_yes if f["yes"] else attr.note_no)
        if t == "audience":
            return self._p(lex.DOMAINS[f["domain"]].audiences[f["key"]])
        if t == "price":
            return _price_text(f["domain"], f["key"], self.lang)
        return self.query_value_text(f)

    # -- query -----------------------------------------------------------------
    def query(self, ent: Entity, intent: str, compare_id: str | None, values: list[dict]) -> str:
        lang, rng = self.lang, self.rng
        tpl = self._choice(lex.QUERY_TEMPLATES[lang][intent])
        base = tpl.format(E=ent.name(lang), S=ENTITIES[compare_id].name(lang) if compare_id else "",
                          verb=self._p(ent.verb), pv=self._p(ent.place_verb))
        before, after = [], []
        for q in values:
            phrase = self._choice(lex.CONSTRAINT_QUERY[lang][q["type"]])
            text = self.query_value_text(q)
            phrase = phrase.format(city=text, price=text, aud=text, season=text, phrase=text)
            (before if rng.random() < 0.3 else after).append(phrase)
        query = " ".join(before + [base] + after)
        if lang == "en" and rng.random() < 0.5:
            query = query.lower()  # many searches are typed in lower case
        return query

    # -- note ------------------------------------------------------------------
    def _fact_line(self, f: dict, query_values: list[dict]) -> str:
        lang = self.lang
        t = f["type"]
        text = self.fact_text(f)
        line = self._choice(lex.FACT_TEMPLATES[lang][t]).format(
            city=text, price=text, aud=text, season=text, phrase=text)
        if f.get("hint") and t in lex.VIOLATED_HINTS[lang]:
            q = next((v for v in query_values if v["type"] == t), None)
            if q is not None:
                qtext = self.query_value_text(q)
                line = lex.VIOLATED_HINTS[lang][t].format(city=text, qcity=qtext, qaud=qtext, qseason=qtext)
        return line

    def note(self, ent: Entity, intent: str, partner_id: str | None, facts: list[dict],
             mention_id: str | None, query_values: list[dict]) -> tuple[str, str, list[str]]:
        lang, rng = self.lang, self.rng
        dom = lex.DOMAINS[ent.domain]
        tpl = lex.NOTE_TEMPLATES[lang][intent]
        facts = [f for f in facts if f is not None]
        # The place and purchase genres carry the city or price in their body.
        city = price = None
        if intent == "place":
            place = next((f for f in facts if f["type"] == "place"), None)
            city = self.fact_text(place) if place else self._p(self._choice(lex.CITIES))
            facts = [f for f in facts if f is not place]
        if intent == "purchase":
            fprice = next((f for f in facts if f["type"] == "price"), None)
            if fprice:
                price = self.fact_text(fprice)
            else:
                cap = self._choice(_caps(ent.domain, lang))
                price = _price_text(ent.domain, _below(cap, rng), lang)
            facts = [f for f in facts if f is not fprice]
        partner = ENTITIES[partner_id].name(lang) if partner_id else ""
        fields = dict(E=ent.name(lang), S=partner, verb=self._p(ent.verb), pv=self._p(ent.place_verb),
                      city=city, price=price, n=3, r=rng.choice((3, 4, 4, 5, 5)),
                      dur=self._p(self._choice(lex.DURATIONS)))

        def fill(key: str, **extra) -> str:
            return self._choice(tpl[key]).format(**{**fields, **extra})

        def items(texts: tuple[lex.Text, ...], k: int) -> list[str]:
            return [self._p(x) for x in rng.sample(texts, k)]

        title = fill("title")
        body = [fill("intro")]
        if intent == "how-to":
            marks = ("1️⃣", "2️⃣", "3️⃣", "4️⃣") if lang == "en" else ("①", "②", "③", "④")
            steps = items(dom.howto_steps, 4)
            body += [f"{marks[i]} {s[0].upper() + s[1:] if lang == 'en' else s}" for i, s in enumerate(steps[:3])]
            body.append(fill("tip", x=steps[3]))
        elif intent == "recommendation":
            recs, reasons = items(dom.picks, 3), [self._p(x) for x in rng.sample(lex.REASONS, 3)]
            marks = ("①", "②", "③")
            body += [f"{marks[i]} " + fill("item", x=recs[i], y=reasons[i]) for i in range(3)]
        elif intent == "review":
            pros, cons = items(dom.pros, 2), items(dom.cons, 1)
            body += [fill("pros", x=pros[0], y=pros[1]), fill("cons", x=cons[0]), fill("score")]
        elif intent == "place":
            body += [fill("where", x=self._p(self._choice(dom.shops)), y=self._p(self._choice(lex.DIRECTIONS))),
                     fill("hours", x=self._p(self._choice(lex.HOURS))),
                     fill("tip", x=self._p(self._choice(lex.PLACE_TIPS)))]
        elif intent == "purchase":
            body += [fill("channel", x=self._p(self._choice(lex.CHANNELS)), y=self._p(self._choice(lex.DISCOUNTS))),
                     fill("price"), fill("ship", n=rng.randint(2, 6))]
        elif intent == "comparison":
            names = [fields["E"], partner]
            for aspect in items(dom.aspects, 2):
                body.append(fill("aspect", x=aspect, y=self._choice(names)))
            body.append(fill("verdict", x=self._p(self._choice(dom.aspects)), y=self._choice(names)))
        elif intent == "inspiration":
            marks = rng.sample(tpl["idea"], 3)
            body += [m.format(x=idea) for m, idea in zip(marks, items(dom.ideas, 3))]
            body.append(fill("outro"))
        # Facts go anywhere after the opening line.
        for f in facts:
            body.insert(rng.randint(1, len(body)), self._fact_line(f, query_values))
        if mention_id:
            body.insert(rng.randint(len(body) - 1, len(body)),
                        self._choice(lex.MENTIONS[lang]).format(M=ENTITIES[mention_id].name(lang)))
        tags = [_tag(ent.name(lang), lang), _tag(lex.category_name(ent.category, lang), lang),
                _tag(lex.domain_name(ent.domain, lang), lang), self._p(lex.INTENT_TAGS[intent])]
        if rng.random() < 0.5:
            tags.append(self._p(self._choice(lex.GENERIC_TAGS)))
        return title, "\n".join(body), tags


# ---------------------------------------------------------------------------
# Whole benchmark
# ---------------------------------------------------------------------------
def _balanced_labels(n: int, rng: random.Random) -> list[int]:
    labels = [LABELS[i % len(LABELS)] for i in range(n)]
    rng.shuffle(labels)
    return labels


def _generate_split(name: str, size: int, cfg: BenchmarkConfig, seen: set, longtail: bool,
                    criteria: Criteria) -> list[dict]:
    rng = random.Random(f"grm-benchmark:{cfg.seed}:{cfg.lang}:{name}")
    gen = _SplitGenerator(cfg.lang, rng, longtail=longtail)
    rows = []
    labels = _balanced_labels(size, rng)
    for i, label in enumerate(tqdm(labels, desc=f"{name} ({cfg.lang})", disable=not cfg.progress,
                                   unit="row", leave=False)):
        row = draw_new_row(gen, label, seen, criteria, f"split {name}")
        row["id"] = f"{cfg.lang}-s{cfg.seed}-{name}-{i:06d}"
        row["reasoning"] = None
        rows.append(row)
    return rows


def draw_new_row(gen: _SplitGenerator, label: int, seen: set, criteria: Criteria, where: str,
                 plan: dict | None = None, query: str | None = None) -> dict:
    """A row of ``label`` whose pair is not in ``seen`` (then added); ``query`` replaces its query text."""
    for _attempt in range(50):
        row = gen.make(label, plan)
        if query is not None:
            row["query"] = query
        key = (row["query"], row["title"], row["content"])
        if key not in seen:  # no exact duplicate pair across the whole benchmark
            seen.add(key)
            break
    else:
        raise RuntimeError(f"{where}: could not draw a new distinct pair for label {label}")
    derived = criteria.label_from_verdicts(row["step_gold"])
    if derived != label:  # construction and criteria must agree, always
        raise AssertionError(f"row plan {row['case']} gives verdicts {row['step_gold']} -> {derived}, "
                             f"not label {label}")
    return row


_POOL_HIDDEN = ("label", "step_gold", "reasoning", "case", "note_entity", "note_domain", "note_category",
                "note_subject", "note_intent", "collision_keyword")


def generate_benchmark(cfg: BenchmarkConfig) -> dict[str, list[dict]]:
    """Split name -> rows: train, val, test_random, test_longtail (and pool when pool_size > 0).

    Deterministic for a config. The first ``sft_size`` train rows (a random
    sample, as train is shuffled) carry a warm-up reasoning trace.
    """
    if cfg.lang not in lex.LANGS:
        raise ValueError(f"lang must be one of {lex.LANGS}, got {cfg.lang!r}")
    lex.validate_lexicon()
    criteria = SCHEMA
    seen: set = set()
    splits: dict[str, list[dict]] = {}
    for name, size in cfg.sizes().items():
        splits[name] = _generate_split(name, size, cfg, seen, name == "test_longtail", criteria)
    if cfg.pool_size > 0:
        pool = _generate_split("pool", cfg.pool_size, cfg, seen, False, criteria)
        for row in pool:
            for key in _POOL_HIDDEN:
                row[key] = None
            row["constraints"] = [{"type": c["type"], "value": c["value"]} for c in row["constraints"]]
        splits["pool"] = pool
    for name in RANK_SPLITS if cfg.rank_queries > 0 else ():
        splits[name] = generate_ranking_split(name, cfg.rank_queries, cfg.rank_candidates, cfg, seen, criteria)
    trace_criteria = load_criteria(cfg.criteria)
    for row in splits["train"][: cfg.sft_size]:
        row["reasoning"] = build_trace(row, trace_criteria, cfg.lang)
    check_no_leakage(splits)
    return splits


# ---------------------------------------------------------------------------
# Leakage check
# ---------------------------------------------------------------------------
_WORD = re.compile(r"[0-9a-z]+")
_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyz")
_ROW_BREAK = " 0rowbreak0 "  # a token no name contains, so matches never span two rows


def _surface_forms(entity_id: str, fallback: Iterable[str] = ()) -> list[str]:
    ent = ENTITIES.get(entity_id)
    names = list(ent.names.values()) if ent else []
    names += [n for n in fallback if n]
    return sorted(set(names))


def _row_text(row: Mapping[str, Any]) -> str:
    tags = row.get("tags") or []
    return "\n".join([str(row.get("query") or ""), str(row.get("title") or ""), str(row.get("content") or ""),
                      " ".join(tags if isinstance(tags, (list, tuple)) else [str(tags)])]).lower()


class _SurfaceIndex:
    """Finds any of a set of names in lower-cased text: whole-word sequences for
    Latin names (also glued together, as in hashtags), substrings for CJK names."""

    def __init__(self, names_by_entity: Mapping[str, list[str]]):
        self.latin: list[tuple[tuple[str, ...], re.Pattern | None, str, str]] = []
        self.cjk: list[tuple[str, str, str]] = []
        for eid, names in names_by_entity.items():
            for name in names:
                low = name.lower()
                if re.search(r"[^\x00-\x7f]", low):
                    self.cjk.append((low, eid, name))
                    continue
                words = tuple(_WORD.findall(low))
                if not words:
                    continue
                glued = ("".join(words),)
                self.latin.append((glued, None, eid, name))
                if len(words) > 1:
                    # Literal first word (fast scan); the left word boundary is checked by hand.
                    pattern = re.compile(r"[^0-9a-z]+".join(map(re.escape, words)) + r"(?![0-9a-z])")
                    self.latin.append((words, pattern, eid, name))

    def find(self, text: str) -> tuple[str, str] | None:
        if _CJK.search(text):
            for low, eid, name in self.cjk:
                if low in text:
                    return eid, name
        # Word counts rule out almost every name at C speed; only names whose
        # words all occur somewhere are searched for as a sequence.
        counts = Counter(_WORD.findall(text))
        for words, pattern, eid, name in self.latin:
            if all(w in counts for w in words) and (pattern is None or _has_word_match(pattern, text)):
                return eid, name
        return None


def _has_word_match(pattern: re.Pattern, text: str) -> bool:
    return any(m.start() == 0 or text[m.start() - 1] not in _LATIN_ALNUM for m in pattern.finditer(text))


def check_no_leakage(splits: Mapping[str, list[dict]]) -> None:
    """Raise ValueError if any long-tail subject reaches another split.

    The long-tail subjects are the ``entity`` ids of the test_longtail rows.
    No row of any other split may name one of them as its subject, note
    subject or comparison partner, nor contain its name (English or Chinese,
    also glued as a hashtag) in its query, title, content or tags. Training-
    side queries must not use a held-out intent x constraint composition.
    """
    longtail = [r for s in LONGTAIL_SPLITS for r in splits.get(s) or []]
    held: dict[str, set[str]] = {}
    for row in longtail:
        held.setdefault(row["entity"], set()).add(str(row.get("subject") or ""))
    held_compositions = set(lex.HELDOUT_COMPOSITIONS)
    index = _SurfaceIndex({eid: _surface_forms(eid, extra) for eid, extra in held.items()})
    for split, rows in splits.items():
        if split in LONGTAIL_SPLITS:
            continue
        for row in rows:
            for field in ("entity", "note_entity", "compare_entity"):
                if row.get(field) in held:
                    raise ValueError(f"long-tail entity {row[field]!r} leaks into split {split!r}: "
                                     f"row {row.get('id')} field {field!r}")
            for c in row.get("constraints") or []:
                if (row.get("intent"), c.get("type")) in held_compositions:
                    raise ValueError(f"held-out composition ({row.get('intent')}, {c.get('type')}) "
                                     f"appears in split {split!r}: row {row.get('id')}")
        if not held:
            continue
        texts = [_row_text(r) for r in rows]
        if index.find(_ROW_BREAK.join(texts)) is None:
            continue
        for row, text in zip(rows, texts):  # locate the offending row for the message
            hit = index.find(text)
            if hit:
                raise ValueError(f"long-tail entity {hit[0]!r} leaks into split {split!r}: "
                                 f"row {row.get('id')} contains {hit[1]!r}")


# ---------------------------------------------------------------------------
# Card, JSONL dump, command line
# ---------------------------------------------------------------------------
def _percent(n: int, total: int) -> str:
    return f"{100.0 * n / total:.1f}%" if total else "-"


def write_card(out_dir: str | Path, splits: Mapping[str, list[dict]], cfg: BenchmarkConfig,
               seconds: float | None = None) -> Path:
    """A README describing the generated benchmark: sizes, labels, cases, domains."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labelled = [s for s in splits if s != "pool"]
    lines = ["# Offline relevance benchmark", "",
             "RedNote-style (query, note) pairs with 5-level relevance labels and per-step gold verdicts, "
             "labelled by construction (subject relation, intent served, constraint satisfaction), "
             "never by word overlap. Generated by `python -m data_prep benchmark`.", "",
             f"- seed: {cfg.seed}", f"- language: {cfg.lang}",
             f"- SFT warm-up traces: {sum(1 for r in splits.get('train', []) if r.get('reasoning'))} train rows "
             f"(criteria `{cfg.criteria}`)"]
    if seconds is not None:
        lines.append(f"- generation time: {seconds:.1f} s")
    lines += ["", "## Sizes and label distribution", "",
              "| split | rows | " + " | ".join(f"label {v}" for v in LABELS) + " |",
              "|---|---:|" + "---:|" * len(LABELS)]
    for s in labelled:
        rows = splits[s]
        counts = Counter(r["label"] for r in rows)
        cells = [f"{counts[v]} ({_percent(counts[v], len(rows))})" for v in LABELS]
        lines.append(f"| {s} | {len(rows)} | " + " | ".join(cells) + " |")
    if "pool" in splits:
        lines.append(f"| pool (unlabelled) | {len(splits['pool'])} | " + " | ".join("-" for _ in LABELS) + " |")
    cases = sorted({r["case"] for s in labelled for r in splits[s]})
    lines += ["", "## Construction cases", "",
              "exact_match (3), constraint_violated (2), other_intent and passing_mention (1), sibling (0), "
              "keyword_collision and unrelated (-1).", "",
              "| split | " + " | ".join(cases) + " |", "|---|" + "---:|" * len(cases)]
    for s in labelled:
        counts = Counter(r["case"] for r in splits[s])
        lines.append(f"| {s} | " + " | ".join(str(counts[c]) for c in cases) + " |")
    lines += ["", "## Query intents", "", "| split | " + " | ".join(lex.INTENTS) + " | constraints (mean) |",
              "|---|" + "---:|" * (len(lex.INTENTS) + 1)]
    for s in labelled:
        rows = splits[s]
        counts = Counter(r["intent"] for r in rows)
        mean_c = sum(len(r["constraints"]) for r in rows) / max(1, len(rows))
        lines.append(f"| {s} | " + " | ".join(str(counts[i]) for i in lex.INTENTS) + f" | {mean_c:.2f} |")
    train_ids = {e for e in ENTITIES if not lex.is_heldout(e)}
    lines += ["", "## Domains", "", "| domain | entities | categories | held out (long-tail only) |",
              "|---|---:|---:|---|"]
    for dom, spec in lex.DOMAINS.items():
        ids = [e for e in ENTITIES if ENTITIES[e].domain == dom]
        held = [e for e in ids if e not in train_ids]
        note = ("whole domain" if dom in lex.HELDOUT_DOMAINS else
                ", ".join(sorted(ENTITIES[e].name(cfg.lang) for e in held)) or "-")
        lines.append(f"| {pick(spec.name, cfg.lang)} | {len(ids)} | {len(spec.categories)} | {note} |")
    lines += ["", "## Long-tail split", "",
              f"test_longtail uses only the {len(ENTITIES) - len(train_ids)} held-out entities "
              f"(of {len(ENTITIES)}): whole domains {list(lex.HELDOUT_DOMAINS)}, whole categories "
              f"{list(lex.HELDOUT_CATEGORIES)} and single entities. About "
              f"{int(_LONGTAIL_COMPOSITION_RATE * 100)}% of its queries use an intent x constraint "
              f"composition that no other split contains: "
              + ", ".join(f"{i} x {t}" for i, t in lex.HELDOUT_COMPOSITIONS) + ".",
              "`check_no_leakage` verified that no other split names a long-tail entity (by id or by its "
              "English/Chinese surface name, hashtags included) or uses a held-out composition.", "",
              "## Row fields", "",
              "`id, query, title, content, tags, label, step_gold, reasoning, domain, category, entity, subject, "
              "intent, constraints (type, value, note_value, satisfied), compare_entity, compare_with, "
              "note_entity, note_domain, note_category, note_subject, note_intent, case, collision_keyword, lang`. "
              "Pool rows keep only the query-side fields.", ""]
    path = out / "README.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_jsonl(splits: Mapping[str, list[dict]], out_dir: str | Path) -> list[Path]:
    """Raw rows as JSONL (for inspection; the training data is the parquet)."""
    out = Path(out_dir) / "jsonl"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in splits.items():
        path = out / f"{name}.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        paths.append(path)
    return paths


def rows_for_criteria(splits: Mapping[str, list[dict]], criteria: Criteria) -> dict[str, list[dict]]:
    """Keep only the step annotations the chosen criteria defines (none for free-form)."""
    names = set(criteria.step_names)
    out = {}
    for split, rows in splits.items():
        out[split] = [{**r, "step_gold": {k: v for k, v in r["step_gold"].items() if k in names}}
                      if r.get("step_gold") else r for r in rows]
    return out


def add_benchmark_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    d = BenchmarkConfig()
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--lang", choices=lex.LANGS, default=d.lang)
    parser.add_argument("--train-size", type=positive_int, default=d.train_size)
    parser.add_argument("--val-size", type=positive_int, default=d.val_size)
    parser.add_argument("--test-random-size", type=positive_int, default=d.test_random_size)
    parser.add_argument("--test-longtail-size", type=positive_int, default=d.test_longtail_size)
    parser.add_argument("--pool-size", type=non_negative_int, default=d.pool_size,
                        help="unlabelled pairs for distillation (default: none)")
    parser.add_argument("--rank-queries", type=non_negative_int, default=d.rank_queries,
                        help="queries per ranking split (rank_random, rank_longtail); 0: none")
    parser.add_argument("--rank-candidates", type=positive_int, default=d.rank_candidates,
                        help="candidate notes per ranking query (>= 5: every level)")
    parser.add_argument("--sft-size", type=non_negative_int, default=None,
                        help=f"train rows that get a warm-up reasoning trace, at most --train-size "
                             f"(default: {d.sft_size} or all train rows when fewer)")
    parser.add_argument("--criteria", default=d.criteria, help="criteria name or YAML path")
    parser.add_argument("--jsonl", action="store_true", help="also dump raw rows as JSONL")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def config_from_args(args: argparse.Namespace) -> BenchmarkConfig:
    return BenchmarkConfig(seed=args.seed, train_size=args.train_size, val_size=args.val_size,
                           test_random_size=args.test_random_size, test_longtail_size=args.test_longtail_size,
                           pool_size=args.pool_size, rank_queries=args.rank_queries,
                           rank_candidates=args.rank_candidates, lang=args.lang,
                           sft_size=min(BenchmarkConfig.sft_size, args.train_size) if args.sft_size is None
                           else args.sft_size,
                           criteria=args.criteria, progress=not args.no_progress)


# The splits are built in memory: tracemalloc saw a peak of 6-10 KB per row (4k rows).
_BYTES_PER_ROW = 10_000


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None  # not Linux: no check


def size_problem(cfg: BenchmarkConfig, available: int | None = None) -> str | None:
    """Why these sizes cannot give a benchmark on this machine (checked before generating)."""
    if cfg.sft_size > cfg.train_size:
        return (f"--sft-size {cfg.sft_size} is larger than --train-size {cfg.train_size}: "
                "the warm-up traces are written for train rows")
    available = _available_memory() if available is None else available
    rows = sum(cfg.sizes().values()) + cfg.pool_size
    needed = rows * _BYTES_PER_ROW
    if available is not None and needed > available:
        return (f"{rows} rows need about {needed / 2**30:.1f} GiB while generated, and "
                f"{available / 2**30:.1f} GiB is available; ask for fewer rows (--train-size, --pool-size, ...)")
    return None


def build_benchmark(cfg: BenchmarkConfig, out: str | Path, jsonl: bool = False) -> tuple[dict, dict, Path, float]:
    """Generate the benchmark of ``cfg`` (leak-checked) and write it into ``out``: the parquet
    splits in ``cfg.criteria``'s prompts, the card and, with ``jsonl``, the raw rows.

    Returns (splits, the writer's summary, the card's path, generation seconds). Generated rows
    are valid by construction, so a rejected one is a bug (RuntimeError).
    """
    crit = load_criteria(cfg.criteria)
    start = time.perf_counter()
    splits = generate_benchmark(cfg)  # also runs check_no_leakage
    seconds = time.perf_counter() - start
    summary = write_splits(rows_for_criteria(splits, crit), out, criteria=cfg.criteria, lang=cfg.lang)
    if summary.get("rows_rejected"):
        raise RuntimeError(f"{summary['rows_rejected']} generated rows were rejected; see {Path(out) / 'rejected.jsonl'}")
    if jsonl:
        write_jsonl(splits, out)
    return splits, summary, write_card(out, splits, cfg, seconds=seconds), seconds


def run_benchmark_cli(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    problem = size_problem(cfg)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        splits, summary, card, seconds = build_benchmark(cfg, args.out, jsonl=args.jsonl)
    except MemoryError:
        print(f"error: out of memory while generating {sum(cfg.sizes().values()) + cfg.pool_size} rows; "
              "ask for fewer rows", file=sys.stderr)
        return 2
    except OSError as exc:  # the output folder cannot be written
        print(f"error: {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except (CriteriaError, OutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sizes = ", ".join(f"{k}={len(v)}" for k, v in splits.items())
    print(f"benchmark ({cfg.lang}, seed {cfg.seed}): {sizes} in {seconds:.1f} s; "
          f"{summary.get('rows_rejected', 0)} rejected; card {card}")
    return 0


def _main_for_dev(argv: list[str] | None = None) -> int:
    """Generate and dump JSONL only (no parquet), for looking at the data."""
    parser = add_benchmark_args(argparse.ArgumentParser(description=_main_for_dev.__doc__))
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    start = time.perf_counter()
    splits = generate_benchmark(cfg)
    seconds = time.perf_counter() - start
    write_jsonl(splits, args.out)
    write_card(args.out, splits, cfg, seconds=seconds)
    print(json.dumps({k: len(v) for k, v in splits.items()}), f"{seconds:.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main_for_dev())
