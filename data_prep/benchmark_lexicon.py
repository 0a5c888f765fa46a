"""Domain vocabulary and text templates for the offline relevance benchmark.

The data lives in ``data_prep/lexicon/``: one ``<domain>.yaml`` per domain (its
categories of sibling entities, the constraint values it can be asked about:
audiences, attributes, price caps, and the phrases its notes are written from)
and ``common.yaml`` (the domain order, keyword collisions, the long-tail
hold-out, vocabulary shared by all domains, query and note templates). They are
read once, at import, into the frozen records below; `load_lexicon` reads
another folder. Every text is a `Text` with an English and a Chinese side; the
generator in `data_prep.benchmark` picks one side by language.

Names must be distinct surface strings: the long-tail leakage check searches
training text for the full names of held-out entities, so an entity name must
not occur inside the shared phrases, nor inside another entity's name.
`validate_lexicon` checks the rest the generator relies on.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, NamedTuple

import yaml

LEXICON_DIR = Path(__file__).parent / "lexicon"
LANGS = ("en", "zh")
# The generator's code branches on these names, so they are code, not lexicon data.
INTENTS = ("how-to", "recommendation", "review", "place", "purchase", "comparison", "inspiration")
CONSTRAINT_TYPES = ("place", "price", "audience", "time", "attribute")
_ID = re.compile(r"^[a-z0-9_]+$")  # no dots: entity ids are "domain.short", categories "domain.category"


class DataFileError(ValueError):
    """A data file (lexicon, trace templates) is malformed; the message names the file and the field."""


# ---------------------------------------------------------------------------
# Records.
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Text:
    """One text in both languages (a collision keyword lacks the side whose names do not share it)."""
    en: str | None
    zh: str | None


def pick(text: Text, lang: str) -> str | None:
    return text.zh if lang == "zh" else text.en


class _ReadByName:
    """``record["field"]`` reads a field, as the dict entries these records replaced did."""

    def __getitem__(self, name: str) -> Any:
        if name not in {f.name for f in dataclasses.fields(self)}:
            raise KeyError(name)
        return getattr(self, name)


@dataclass(frozen=True)
class Entity:
    id: str  # "domain.short"
    domain: str
    category: str  # "domain.category"
    names: Mapping[str, str]  # lang -> surface name
    verb: Text
    place_verb: Text
    constraint_types: tuple[str, ...]

    def name(self, lang: str) -> str:
        return self.names[lang]


class Category(NamedTuple):
    """Sibling entities; a tuple, so it unpacks as ``name, entities`` like the tuples it replaced."""
    name: Text
    entities: tuple[Entity, ...]


@dataclass(frozen=True)
class Attribute:
    query: Text  # how a query asks for it ("matte")
    note_yes: Text  # how a note says the entity has it
    note_no: Text  # how a note says it has not


@dataclass(frozen=True)
class Price:
    format: Text  # "{p}" is the amount
    caps: Mapping[str, tuple[int, ...]]  # lang -> the caps a query asks under, in that language's currency

    def text(self, amount: int, lang: str) -> str:
        return pick(self.format, lang).format(p=amount)


@dataclass(frozen=True)
class Domain(_ReadByName):
    id: str
    name: Text
    verb: Text  # the how-to verb; a category may override it, the place verb and the constraint types
    place_verb: Text
    constraint_types: tuple[str, ...]
    categories: Mapping[str, Category]  # short id -> category
    price: Price
    audiences: tuple[Text, ...]
    attributes: tuple[Attribute, ...]
    howto_steps: tuple[Text, ...]
    picks: tuple[Text, ...]  # variants a recommendation names ("the travel-size version")
    pros: tuple[Text, ...]
    cons: tuple[Text, ...]
    aspects: tuple[Text, ...]  # what a comparison compares
    ideas: tuple[Text, ...]
    shops: tuple[Text, ...]


@dataclass(frozen=True)
class Collision(_ReadByName):
    id: str
    keyword: Text
    entities: tuple[str, str]


@dataclass(frozen=True)
class HeldOut:
    domains: tuple[str, ...]
    categories: tuple[str, ...]
    entities: tuple[str, ...]
    compositions: tuple[tuple[str, str], ...]  # (intent, constraint type)


@dataclass(frozen=True)
class Vocabulary:
    cities: tuple[Text, ...]
    seasons: tuple[Text, ...]
    durations: tuple[Text, ...]
    channels: tuple[Text, ...]
    discounts: tuple[Text, ...]
    directions: tuple[Text, ...]
    hours: tuple[Text, ...]
    place_tips: tuple[Text, ...]
    reasons: tuple[Text, ...]
    generic_tags: tuple[Text, ...]


@dataclass(frozen=True)
class Templates:
    query: Mapping[str, Mapping[str, tuple[str, ...]]]  # lang -> intent -> templates
    constraint_query: Mapping[str, Mapping[str, tuple[str, ...]]]  # lang -> constraint type -> templates
    fact: Mapping[str, Mapping[str, tuple[str, ...]]]  # lang -> constraint type -> templates
    violated_hints: Mapping[str, Mapping[str, str]]  # lang -> constraint type -> template
    mentions: Mapping[str, tuple[str, ...]]  # lang -> templates
    note: Mapping[str, Mapping[str, Mapping[str, tuple[str, ...]]]]  # lang -> intent -> part -> templates
    intent_tags: Mapping[str, Text]


@dataclass(frozen=True)
class Lexicon:
    folder: Path
    domains: Mapping[str, Domain]
    entities: Mapping[str, Entity]
    collisions: tuple[Collision, ...]
    heldout: HeldOut
    vocabulary: Vocabulary
    templates: Templates

    def is_heldout(self, entity_id: str) -> bool:
        ent = self.entities[entity_id]
        return (ent.domain in self.heldout.domains or ent.category in self.heldout.categories
                or entity_id in self.heldout.entities)

    def collision_of(self, entity_id: str, lang: str) -> list[tuple[str, str]]:
        out = []
        for col in self.collisions:
            keyword = pick(col.keyword, lang)
            if keyword and entity_id in col.entities:
                a, b = col.entities
                out.append((b if entity_id == a else a, keyword))
        return out

    def category_name(self, category: str, lang: str) -> str:
        dom, cat = category.split(".", 1)
        return pick(self.domains[dom].categories[cat].name, lang)

    def domain_name(self, domain: str, lang: str) -> str:
        return pick(self.domains[domain].name, lang)


# ---------------------------------------------------------------------------
# Reading YAML with errors that name the file and the field.
# ---------------------------------------------------------------------------
def _join(field: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{field}[{key}]"
    return f"{field}.{key}" if field else str(key)


class DataFile:
    """One YAML data file, parsed with ``yaml.safe_load``; its readers check types and keys."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.data = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise DataFileError(f"{self.path}: cannot be read ({exc.strerror or exc})") from None
        except yaml.YAMLError as exc:
            raise DataFileError(f"{self.path}: not valid YAML: {exc}") from None

    def error(self, field: str, problem: str) -> DataFileError:
        return DataFileError(f"{self.path}: field '{field or '(top level)'}' {problem}")

    def mapping(self, node: Any, field: str, required: tuple = (), optional: tuple = (),
                any_keys: bool = False) -> dict:
        if not isinstance(node, dict):
            raise self.error(field, f"must be a mapping, got {type(node).__name__}")
        for key in required:
            if key not in node:
                raise self.error(_join(field, key), "is missing")
        for key in node:
            if not isinstance(key, str) or not (any_keys or key in required or key in optional):
                known = ", ".join(map(str, (*required, *optional)))
                raise self.error(_join(field, key), f"is not a known field (known: {known})")
        return node

    def each(self, node: Any, field: str, may_be_empty: bool = False) -> Iterator[tuple[Any, str]]:
        """(item, its field name) for a list."""
        if not isinstance(node, list) or not (node or may_be_empty):
            raise self.error(field, f"must be a {'' if may_be_empty else 'non-empty '}list, got {node!r:.60}")
        for i, item in enumerate(node):
            yield item, _join(field, i)

    def string(self, node: Any, field: str, allow_empty: bool = False) -> str:
        if not isinstance(node, str) or not (node or allow_empty):
            raise self.error(field, f"must be a non-empty string, got {node!r:.60}")
        return node

    def strings(self, node: Any, field: str, may_be_empty: bool = False) -> tuple[str, ...]:
        return tuple(self.string(x, f) for x, f in self.each(node, field, may_be_empty))

    def ident(self, node: Any, field: str) -> str:
        if not isinstance(node, str) or not _ID.match(node):
            raise self.error(field, f"must be an id of a-z, 0-9 and _, got {node!r:.60}")
        return node

    def text(self, node: Any, field: str, partial: bool = False) -> Text:
        node = self.mapping(node, field, () if partial else LANGS, LANGS if partial else ())
        if not node:
            raise self.error(field, "needs at least one language")
        return Text(**{lang: self.string(node[lang], _join(field, lang)) if lang in node else None
                       for lang in LANGS})

    def texts(self, node: Any, field: str) -> tuple[Text, ...]:
        return tuple(self.text(x, f) for x, f in self.each(node, field))

    def table(self, node: Any, field: str, keys: tuple, read: Callable[[Any, str], Any]) -> dict:
        """A mapping with exactly ``keys``, each value read by ``read``."""
        return {k: read(v, _join(field, k)) for k, v in self.mapping(node, field, keys).items()}


# ---------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------
_DOMAIN_KEYS = ("name", "verb", "place_verb", "constraint_types", "categories", "price", "audiences",
                "attributes", "howto_steps", "picks", "pros", "cons", "aspects", "ideas", "shops")


def _constraint_types(f: DataFile, node: Any, field: str) -> tuple[str, ...]:
    types = []
    for x, xf in f.each(node, field):
        if f.string(x, xf) not in CONSTRAINT_TYPES:
            raise f.error(xf, f"must be one of {CONSTRAINT_TYPES}, got {x!r}")
        types.append(x)
    return tuple(types)


def _read_domain(f: DataFile, dom_id: str, entities: dict[str, Entity]) -> Domain:
    d = f.mapping(f.data, "", _DOMAIN_KEYS)
    verb, place_verb = f.text(d["verb"], "verb"), f.text(d["place_verb"], "place_verb")
    constraint_types = _constraint_types(f, d["constraint_types"], "constraint_types")
    categories: dict[str, Category] = {}
    for node, field in f.each(d["categories"], "categories"):
        c = f.mapping(node, field, ("id", "name", "entities"), ("verb", "place_verb", "constraint_types"))
        cat_id = f.ident(c["id"], _join(field, "id"))
        if cat_id in categories:
            raise f.error(_join(field, "id"), f"repeats the category id {cat_id!r}")
        # A category overrides the domain's verbs or constraint types where they read wrong.
        cat_verb = f.text(c["verb"], _join(field, "verb")) if "verb" in c else verb
        cat_place_verb = f.text(c["place_verb"], _join(field, "place_verb")) if "place_verb" in c else place_verb
        cat_types = (_constraint_types(f, c["constraint_types"], _join(field, "constraint_types"))
                     if "constraint_types" in c else constraint_types)
        members = []
        for enode, efield in f.each(c["entities"], _join(field, "entities")):
            e = f.mapping(enode, efield, ("id", *LANGS))
            eid = f"{dom_id}.{f.ident(e['id'], _join(efield, 'id'))}"
            if eid in entities:
                raise f.error(_join(efield, "id"), f"repeats the entity id {eid!r}")
            entities[eid] = Entity(id=eid, domain=dom_id, category=f"{dom_id}.{cat_id}",
                                   names={lang: f.string(e[lang], _join(efield, lang)) for lang in LANGS},
                                   verb=cat_verb, place_verb=cat_place_verb, constraint_types=cat_types)
            members.append(entities[eid])
        categories[cat_id] = Category(f.text(c["name"], _join(field, "name")), tuple(members))
    p = f.mapping(d["price"], "price", ("format", "caps"))

    def caps(node: Any, field: str) -> tuple[int, ...]:
        values = [x for x, _ in f.each(node, field)]
        if not all(type(x) is int and x > 0 for x in values):
            raise f.error(field, f"must be a list of positive whole amounts, got {node!r:.60}")
        return tuple(values)

    attributes = tuple(
        Attribute(**{k: f.text(v, _join(field, k)) for k, v in
                     f.mapping(node, field, ("query", "note_yes", "note_no")).items()})
        for node, field in f.each(d["attributes"], "attributes"))
    lists = {k: f.texts(d[k], k) for k in ("audiences", "howto_steps", "picks", "pros", "cons", "aspects",
                                           "ideas", "shops")}
    return Domain(id=dom_id, name=f.text(d["name"], "name"), verb=verb, place_verb=place_verb,
                  constraint_types=constraint_types, categories=categories,
                  price=Price(format=f.text(p["format"], "price.format"),
                              caps=f.table(p["caps"], "price.caps", LANGS, caps)),
                  attributes=attributes, **lists)


def _read_templates(f: DataFile, node: Any) -> Templates:
    t = f.mapping(node, "templates", tuple(x.name for x in dataclasses.fields(Templates)))

    def per_lang(name: str, read: Callable[[Any, str], Any]) -> dict:
        return f.table(t[name], _join("templates", name), LANGS, read)

    def lists_by(keys: tuple) -> Callable[[Any, str], dict]:
        return lambda n, field: f.table(n, field, keys, f.strings)

    def note_parts(n: Any, field: str) -> dict:  # title, intro and the parts the intent's body fills
        parts = f.mapping(n, field, ("title", "intro"), any_keys=True)
        return {k: f.strings(v, _join(field, k)) for k, v in parts.items()}

    def hints(n: Any, field: str) -> dict:
        return {k: f.string(v, _join(field, k)) for k, v in f.mapping(n, field, (), CONSTRAINT_TYPES).items()}

    note = per_lang("note", lambda n, field: f.table(n, field, INTENTS, note_parts))
    for intent in INTENTS:  # the generator asks for parts by name, so every language needs the same
        parts = {lang: sorted(note[lang][intent]) for lang in LANGS}
        if len({tuple(p) for p in parts.values()}) > 1:
            raise f.error(f"templates.note.*.{intent}", f"has different parts per language: {parts}")
    return Templates(query=per_lang("query", lists_by(INTENTS)),
                     constraint_query=per_lang("constraint_query", lists_by(CONSTRAINT_TYPES)),
                     fact=per_lang("fact", lists_by(CONSTRAINT_TYPES)),
                     violated_hints=per_lang("violated_hints", hints),
                     mentions=per_lang("mentions", f.strings),
                     note=note,
                     intent_tags=f.table(t["intent_tags"], "templates.intent_tags", INTENTS, f.text))


def load_lexicon(folder: str | Path = LEXICON_DIR) -> Lexicon:
    """Read ``common.yaml`` and the domain files it lists; a malformed file raises `DataFileError`."""
    folder = Path(folder)
    f = DataFile(folder / "common.yaml")
    top = f.mapping(f.data, "", ("domains", "collisions", "heldout", "vocabulary", "templates"))
    order = [f.ident(x, fl) for x, fl in f.each(top["domains"], "domains")]
    unlisted = sorted(p.name for p in folder.glob("*.yaml") if p.stem != "common" and p.stem not in order)
    if unlisted or len(set(order)) != len(order):
        raise f.error("domains", f"must list each domain file once (unlisted: {unlisted}, listed: {order})")
    entities: dict[str, Entity] = {}
    domains = {d: _read_domain(DataFile(folder / f"{d}.yaml"), d, entities) for d in order}

    collisions = []
    for node, field in f.each(top["collisions"], "collisions"):
        c = f.mapping(node, field, ("id", "keyword", "entities"))
        pair = f.strings(c["entities"], _join(field, "entities"))
        if len(pair) != 2:
            raise f.error(_join(field, "entities"), f"must name two entities, got {len(pair)}")
        collisions.append(Collision(id=f.string(c["id"], _join(field, "id")),
                                    keyword=f.text(c["keyword"], _join(field, "keyword"), partial=True),
                                    entities=pair))
    h = f.mapping(top["heldout"], "heldout", ("domains", "categories", "entities", "compositions"))
    compositions = []
    for node, field in f.each(h["compositions"], "heldout.compositions", may_be_empty=True):
        m = f.mapping(node, field, ("intent", "constraint_type"))
        compositions.append((f.string(m["intent"], _join(field, "intent")),
                             f.string(m["constraint_type"], _join(field, "constraint_type"))))
    heldout = HeldOut(**{k: f.strings(h[k], _join("heldout", k), may_be_empty=True)
                         for k in ("domains", "categories", "entities")}, compositions=tuple(compositions))
    names = tuple(x.name for x in dataclasses.fields(Vocabulary))
    vocabulary = Vocabulary(**f.table(top["vocabulary"], "vocabulary", names, f.texts))
    return Lexicon(folder=folder, domains=domains, entities=entities, collisions=tuple(collisions),
                   heldout=heldout, vocabulary=vocabulary, templates=_read_templates(f, top["templates"]))


LEXICON = load_lexicon()

# The names the generator reads.
DOMAINS = LEXICON.domains
ENTITIES = LEXICON.entities
COLLISIONS = LEXICON.collisions
HELDOUT_DOMAINS = LEXICON.heldout.domains
HELDOUT_CATEGORIES = LEXICON.heldout.categories
HELDOUT_ENTITIES = LEXICON.heldout.entities
HELDOUT_COMPOSITIONS = LEXICON.heldout.compositions
CITIES = LEXICON.vocabulary.cities
SEASONS = LEXICON.vocabulary.seasons
DURATIONS = LEXICON.vocabulary.durations
CHANNELS = LEXICON.vocabulary.channels
DISCOUNTS = LEXICON.vocabulary.discounts
DIRECTIONS = LEXICON.vocabulary.directions
HOURS = LEXICON.vocabulary.hours
PLACE_TIPS = LEXICON.vocabulary.place_tips
REASONS = LEXICON.vocabulary.reasons
GENERIC_TAGS = LEXICON.vocabulary.generic_tags
QUERY_TEMPLATES = LEXICON.templates.query
CONSTRAINT_QUERY = LEXICON.templates.constraint_query
FACT_TEMPLATES = LEXICON.templates.fact
VIOLATED_HINTS = LEXICON.templates.violated_hints
MENTIONS = LEXICON.templates.mentions
NOTE_TEMPLATES = LEXICON.templates.note
INTENT_TAGS = LEXICON.templates.intent_tags


def category_name(category: str, lang: str) -> str:
    return LEXICON.category_name(category, lang)


def domain_name(domain: str, lang: str) -> str:
    return LEXICON.domain_name(domain, lang)


def is_heldout(entity_id: str) -> bool:
    return LEXICON.is_heldout(entity_id)


def collision_of(entity_id: str, lang: str) -> list[tuple[str, str]]:
    """(other entity id, shared keyword) for every collision of this entity in ``lang``."""
    return LEXICON.collision_of(entity_id, lang)


# ---------------------------------------------------------------------------
# Checks.
# ---------------------------------------------------------------------------
def validate_lexicon(source: Lexicon | str | Path | None = None) -> None:
    """Structural checks the generator relies on, for the loaded lexicon, another one or a folder
    (read first: a malformed file fails there). Raises `DataFileError` on the first problem."""
    lx = LEXICON if source is None else source if isinstance(source, Lexicon) else load_lexicon(source)

    def fail(file: str, field: str, problem: str) -> DataFileError:
        return DataFileError(f"{lx.folder / file}: field '{field}' {problem}")

    for i, col in enumerate(lx.collisions):
        where = f"collisions[{i}]"
        a, b = col.entities
        for eid in (a, b):
            if eid not in lx.entities:
                raise fail("common.yaml", where, f"(collision {col.id}): unknown entity {eid}")
        if lx.entities[a].domain == lx.entities[b].domain:
            raise fail("common.yaml", where, f"(collision {col.id}): both sides in domain {lx.entities[a].domain}")
        if lx.is_heldout(a) != lx.is_heldout(b):
            raise fail("common.yaml", where, f"(collision {col.id}): held out on one side only")
        for lang in LANGS:
            kw = pick(col.keyword, lang)
            if kw and not all(kw.lower() in lx.entities[e].name(lang).lower() for e in (a, b)):
                raise fail("common.yaml", where, f"(collision {col.id}): keyword {kw!r} not in both {lang} names")
    for eid in lx.heldout.entities:
        if eid not in lx.entities:
            raise fail("common.yaml", "heldout.entities", f"names {eid}, which is not in the lexicon")
    for cat in lx.heldout.categories:
        dom, c = cat.split(".", 1) if "." in cat else (cat, "")
        if c not in (lx.domains[dom].categories if dom in lx.domains else {}):
            raise fail("common.yaml", "heldout.categories", f"names {cat}, which is not in the lexicon")
    for dom in lx.heldout.domains:
        if dom not in lx.domains:
            raise fail("common.yaml", "heldout.domains", f"names {dom}, which is not in the lexicon")
    for intent, ctype in lx.heldout.compositions:
        if intent not in INTENTS or ctype not in CONSTRAINT_TYPES:
            raise fail("common.yaml", "heldout.compositions",
                       f"has {(intent, ctype)}, an unknown intent or constraint type")
    # Comparison and sibling notes need at least three training siblings per category.
    cats: dict[str, list[str]] = {}
    for e in lx.entities.values():
        cats.setdefault(e.category, []).append(e.id)
    for cat, ids in cats.items():
        pool = ids if all(lx.is_heldout(i) for i in ids) else [i for i in ids if not lx.is_heldout(i)]
        if len(pool) < 3:
            dom, c = cat.split(".", 1)
            raise fail(f"{dom}.yaml", "categories", f"(category {c}) keeps only {len(pool)} entities in its "
                       "split (need 3)")
    names: dict[tuple[str, str], str] = {}
    for e in lx.entities.values():
        for lang in LANGS:
            key = (lang, e.name(lang).lower())
            if key in names:
                raise fail(f"{e.domain}.yaml", "categories", f"(entity {e.id}) shares the {lang} name "
                           f"{e.name(lang)!r} with {names[key]}")
            names[key] = e.id
