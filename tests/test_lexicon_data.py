"""The benchmark lexicon and the trace templates as YAML data: typed on load, malformed files
named with their field, and a generated benchmark pinned to the bytes it had before the data
moved out of Python."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from data_prep import benchmark_lexicon as lex
from data_prep import traces
from data_prep.benchmark import BenchmarkConfig, generate_benchmark


def _texts(node, where=""):
    """(where, Text) for every text inside a record, walking fields, tuples and mappings."""
    if isinstance(node, lex.Text):
        yield where, node
    elif dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            yield from _texts(getattr(node, f.name), f"{where}.{f.name}")
    elif isinstance(node, (tuple, list)):
        for i, x in enumerate(node):
            yield from _texts(x, f"{where}[{i}]")
    elif isinstance(node, dict):
        for k, x in node.items():
            yield from _texts(x, f"{where}.{k}")


# -- (a) the files load into typed records -------------------------------------------


def test_lexicon_loads_into_typed_records():
    lexicon = lex.load_lexicon()
    assert lexicon == lex.LEXICON  # the module's names come from these files
    lex.validate_lexicon(lexicon)
    assert list(lexicon.domains) == yaml.safe_load((lex.LEXICON_DIR / "common.yaml").read_text())["domains"]
    ids = [e.id for d in lexicon.domains.values() for c in d.categories.values() for e in c.entities]
    assert len(ids) == len(set(ids)) == len(lexicon.entities)
    for eid, ent in lexicon.entities.items():
        assert isinstance(ent, lex.Entity) and eid == ent.id == f"{ent.domain}.{eid.split('.', 1)[1]}"
        assert all(isinstance(ent.name(lang), str) and ent.name(lang) for lang in lex.LANGS)
        assert set(ent.constraint_types) <= set(lex.CONSTRAINT_TYPES)
    for dom in lexicon.domains.values():
        assert isinstance(dom.price, lex.Price) and set(dom.price.caps) == set(lex.LANGS)
        assert all(isinstance(a, lex.Attribute) for a in dom.attributes)
    texts = list(_texts(lexicon))
    assert len(texts) > 1000
    for where, text in texts:
        if ".collisions[" in where:  # a keyword may lack the language whose names do not share it
            assert text.en or text.zh, where
        else:
            assert all(isinstance(s, str) and s for s in (text.en, text.zh)), where
    for intent in lex.INTENTS:
        assert all(lexicon.templates.query[lang][intent] for lang in lex.LANGS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        lexicon.domains["beauty"].verb = lex.Text("x", "y")


def test_trace_templates_load_for_both_languages():
    t = traces.load_trace_templates()
    assert t is traces.load_trace_templates()  # read once
    assert set(t.full) == set(t.paper) == set(lex.LANGS) and set(t.terse) == {"en"}
    for lang in lex.LANGS:
        assert set(t.full[lang]["need"]) == set(t.full[lang]["kind"]) == set(lex.INTENTS)
        assert set(t.full[lang]["ctype"]) == set(lex.CONSTRAINT_TYPES)
    assert set(t.terse["en"]) <= set(t.full["en"])


# -- (b) a broken file gives one message naming the file and the field -------------


def _broken_copy(tmp_path: Path, file: str, edit) -> Path:
    folder = tmp_path / "lexicon"
    shutil.copytree(lex.LEXICON_DIR, folder)
    data = yaml.safe_load((folder / file).read_text(encoding="utf-8"))
    edit(data)
    (folder / file).write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder


def _drop(path: tuple):
    def edit(data):
        for key in path[:-1]:
            data = data[key]
        del data[path[-1]]
    return edit


def _set(path: tuple, value):
    def edit(data):
        for key in path[:-1]:
            data = data[key]
        data[path[-1]] = value
    return edit


@pytest.mark.parametrize("file, edit, field, problem", [
    ("beauty.yaml", _drop(("categories", 0, "entities", 0, "zh")), "categories[0].entities[0].zh", "is missing"),
    ("food.yaml", _drop(("price",)), "price", "is missing"),
    ("pets.yaml", _drop(("attributes", 1, "note_no")), "attributes[1].note_no", "is missing"),
    ("travel.yaml", _set(("price", "caps", "en"), "cheap"), "price.caps.en", "must be a non-empty list"),
    ("home.yaml", _set(("audiences", 0, "zh"), 3), "audiences[0].zh", "must be a non-empty string"),
    ("study.yaml", _set(("constraint_types", 0), "colour"), "constraint_types[0]", "must be one of"),
    ("fashion.yaml", _set(("catgories",), []), "catgories", "is not a known field"),
    ("common.yaml", _drop(("heldout", "compositions")), "heldout.compositions", "is missing"),
    ("common.yaml", _drop(("templates", "note", "zh", "review")), "templates.note.zh.review", "is missing"),
    ("common.yaml", _set(("collisions", 0, "entities"), ["food.fuji_apple"]), "collisions[0].entities",
     "must name two entities"),
])
def test_a_broken_lexicon_file_is_named_with_its_field(tmp_path, file, edit, field, problem):
    folder = _broken_copy(tmp_path, file, edit)
    with pytest.raises(lex.DataFileError) as err:
        lex.validate_lexicon(folder)
    message = str(err.value)
    assert message.startswith(f"{folder / file}: field '{field}' {problem}"), message
    assert "\n" not in message


def test_lexicon_consistency_errors_name_the_file_and_field(tmp_path):
    folder = _broken_copy(tmp_path, "common.yaml", _set(("collisions", 2, "entities", 0), "food.no_such_thing"))
    lexicon = lex.load_lexicon(folder)  # well-formed, but inconsistent
    with pytest.raises(lex.DataFileError, match=r"common\.yaml: field 'collisions\[2\]' .*unknown entity"):
        lex.validate_lexicon(lexicon)


def test_unparsable_yaml_and_unlisted_domain_files_are_named(tmp_path):
    folder = tmp_path / "lexicon"
    shutil.copytree(lex.LEXICON_DIR, folder)
    (folder / "beauty.yaml").write_text("name: {en: beauty\n", encoding="utf-8")
    with pytest.raises(lex.DataFileError, match=r"beauty\.yaml: not valid YAML"):
        lex.load_lexicon(folder)
    shutil.copy(lex.LEXICON_DIR / "beauty.yaml", folder / "beauty.yaml")
    shutil.copy(folder / "pets.yaml", folder / "pets_copy.yaml")
    with pytest.raises(lex.DataFileError, match=r"common\.yaml: field 'domains' .*pets_copy\.yaml"):
        lex.load_lexicon(folder)


def test_a_broken_trace_template_is_named_with_its_field(tmp_path):
    data = yaml.safe_load(traces.TEMPLATES_FILE.read_text(encoding="utf-8"))
    del data["full"]["zh"]["c_ok"]
    path = tmp_path / "trace_templates.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(lex.DataFileError, match=r"trace_templates\.yaml: field 'full\.zh\.c_ok' is missing"):
        traces.load_trace_templates(path)


# -- (c) the generated bytes did not drift ---------------------------------------------

_SIZES = dict(train_size=120, val_size=30, test_random_size=30, test_longtail_size=60, pool_size=20,
              rank_queries=4, rank_candidates=6, sft_size=120, progress=False)
# sha256 of the generated rows (json, sorted keys), computed while the lexicon and the trace
# templates were still Python literals: any change to the data or its loading shows here.
_PINNED = {
    ("en", "default"): "5f37196c9eff3abddab4762db9609ece38ad952422673de35cd4c9cfff22b4b4",
    ("en", "compact"): "20c5ed23fbedcf7e461906afaf29f6141e89fd203c86ec986feb86262292925d",
    ("en", "paper"): "1e2d1e4341ab048302b6b2a792b0eb88aab469cb74bb61a0c211c5f0b10c2603",
    ("zh", "default"): "f57750b55bc2d9875de039856c02ccc349bb617d96d5abdbc4b140274c9a0120",
    ("zh", "paper"): "da3956537c943cbc21683b5f5cc3bd5309bd2365d891451cb0c56ce0e6604c91",
}


@pytest.mark.parametrize("lang, criteria", sorted(_PINNED))
def test_generated_benchmark_bytes_are_pinned(lang, criteria):
    splits = generate_benchmark(BenchmarkConfig(seed=5, lang=lang, criteria=criteria, **_SIZES))
    blob = json.dumps(splits, ensure_ascii=False, sort_keys=True).encode()
    assert hashlib.sha256(blob).hexdigest() == _PINNED[(lang, criteria)]
