"""Parse a model response back into steps, verdicts and a label.

One parser per criteria, built once and cached: the regexes are compiled from
the criteria's steps, so a new criteria file needs no code change. Parsing never
raises on model output; a malformed response yields a reason code (see `reward`
for the codes and for what "well-formed" means).

Tags are matched exactly (case-sensitive, as the prompt writes them). Spans are
character offsets into the response string, from the "<" of the opening tag to
just past the ">" of the closing tag. A span is only recorded for a tag whose
first opening tag is directly followed (no other known tag in between) by its
closing tag, so recorded spans never overlap.

Two paths give the same result: a single anchored regex recognises the common
well-formed shape (no "<" other than the tags, each tag once, in order) in one
pass; anything else goes through a tag-by-tag scan that finds what is wrong.
"""

from __future__ import annotations

import re
import threading
from itertools import accumulate

from data_prep.criteria import Criteria, load_criteria

# Characters a model may put around a verdict or label without changing it
# (markdown bold, quotes, brackets, sentence punctuation, CJK punctuation).
# '-' and '+' are absent on purpose: they belong to labels like "-1".
# Every Unicode space is stripped too (NBSP and the ideographic space U+3000,
# common after a full-width colon, are the ones models write; all are below U+3001).
STRIP_CHARS = ("".join(filter(str.isspace, map(chr, range(0x3001))))
               + ".,;:!?'\"`*_()[]{}<>。，；：！？“”‘’「」『』（）【】、")
_LABEL_RE = re.compile(r"[+\-\u2212\uff0d]?[0-9]{1,6}")  # bounded: int() of huge digit runs raises
_MINUS = str.maketrans({"\u2212": "-", "\uff0d": "-"})
# Marker, optional spaces, ASCII or full-width colon, then the verdict on the same line.
_AFTER_MARKER = r"\s*+[:：][ \t]*+"


def _marker_core(marker: str) -> str:
    return marker.strip().rstrip(":：").strip()


_ABSENT = (-1, -1, None)  # a step with no complete span


class Parsed:
    """What a response says. `steps` is in schema order: (start, end, verdict)."""

    __slots__ = ("steps", "answer_start", "answer_end", "pred", "error", "num_steps")

    def __init__(self, steps, answer_start, answer_end, pred, error, num_steps):
        self.steps: tuple[tuple[int, int, str | None], ...] = steps
        self.answer_start: int = answer_start  # -1 when there is no complete answer tag
        self.answer_end: int = answer_end
        self.pred: int | None = pred
        self.error: str = error  # "" when well-formed
        self.num_steps: int = num_steps  # steps with a complete span

    @property
    def ok(self) -> bool:
        return not self.error

    def __eq__(self, other) -> bool:
        return isinstance(other, Parsed) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self) -> str:
        return "Parsed(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"


def parse_label(text: str, label_values) -> int | None:
    """A label written inside the answer tag, tolerating whitespace and punctuation."""
    core = text.strip(STRIP_CHARS)
    if not _LABEL_RE.fullmatch(core):
        return None
    value = int(core.translate(_MINUS))
    return value if value in label_values else None


class ResponseParser:
    """Parser for one criteria. Use `get_parser` to share instances."""

    def __init__(self, criteria: Criteria):
        self.criteria = criteria
        self.stepwise = criteria.format == "stepwise"
        self.label_values = frozenset(criteria.label_values)
        self._label_exact = {str(v): v for v in criteria.label_values}
        # Ordinal distance is measured in ranks, so non-contiguous label values work.
        self.rank = {v: i for i, v in enumerate(sorted(criteria.label_values))}
        self.answer_tag = criteria.answer_tag
        steps = criteria.steps if self.stepwise else ()
        self.step_tags = tuple(s.tag for s in steps)
        self.step_names = tuple(s.name for s in steps)
        self.reasoning_tag = None if self.stepwise else criteria.reasoning_tag
        self._verdict_maps = tuple({v.lower(): v for v in s.verdicts} for s in steps)
        self._verdict_exact = tuple({v: v for v in s.verdicts} for s in steps)
        self._fast_steps = tuple(zip(self._verdict_exact, self._verdict_maps, self.step_names))
        self._empty = Parsed((_ABSENT,) * len(steps), -1, -1, None, "empty", 0)
        self._no_tags = Parsed((_ABSENT,) * len(steps), -1, -1, None,
                               "missing_step:" + steps[0].name if steps else "no_answer", 0)
        # Elements in the order they must appear: (tag, close key, name in error codes,
        # step index or -1 for the reasoning tag, -2 for the answer).
        self._elements = (
            ([(self.reasoning_tag, "/" + self.reasoning_tag, self.reasoning_tag, -1)]
             if self.reasoning_tag else [])
            + [(s.tag, "/" + s.tag, s.name, i) for i, s in enumerate(steps)]
            + [(self.answer_tag, "/" + self.answer_tag, self.answer_tag, -2)])

        # Both language markers are always accepted, whatever the example's language.
        cores = {c for c in (_marker_core(criteria.verdict_marker),
                             _marker_core(criteria.verdict_marker_zh)) if c}
        marker = "(?i:" + "|".join(re.escape(c) for c in sorted(cores, key=len, reverse=True)) + ")"

        tags = list(self.step_tags) + [self.answer_tag]
        if self.reasoning_tag:
            tags.insert(0, self.reasoning_tag)
        alternation = "|".join(re.escape(t) for t in sorted(tags, key=len, reverse=True))
        self._split_re = re.compile("(<)(/?)(" + alternation + ")(>)")
        # Greedy prefix: the LAST marker in a step body gives the verdict.
        self._verdict_re = re.compile(".*" + marker + _AFTER_MARKER + "([^\n]*)", re.DOTALL)

        # Fast path: the whole well-formed response as one regex. Bodies are
        # `[^<]*`, so a match proves each tag occurs once, in order, un-nested.
        # Groups per step: opening tag, verdict text, closing tag. Possessive
        # quantifiers and atomic groups keep a failed match linear: a step can
        # only end at the first "<" after its opening tag, so there is nothing
        # to gain by backtracking into it. Inside a step the greedy `[^<]*`
        # before the marker picks the LAST marker. The lookahead checks first
        # that the closing tag comes next: without it, a step that is never
        # closed retries the rest of the body from every earlier marker
        # (quadratic on a response repeating "Verdict: ..." to the length limit).
        parts = []
        if self.reasoning_tag:
            t = re.escape(self.reasoning_tag)
            parts.append(f"[^<]*+(?:<{t}>[^<]*+</{t}>)?")
        for tag in self.step_tags:
            t = re.escape(tag)
            parts.append(f"[^<]*+(?>(<{t}>)(?=[^<]*+</{t}>)[^<]*{marker}{_AFTER_MARKER}([^\n<]*+)[^<]*+(</{t}>))")
        a = re.escape(self.answer_tag)
        parts.append(f"[^<]*+(<{a}>)([^<]*+)(</{a}>)[^<]*+")
        self._fast_re = re.compile("".join(parts))

    # -- parsing -----------------------------------------------------------------
    def parse(self, text: str) -> Parsed:
        if not text or text.isspace():
            return self._empty
        m = self._fast_re.fullmatch(text)
        if m is not None:
            return self._from_fast(text, m)
        return self.parse_slow(text)

    def _from_fast(self, text: str, m: re.Match) -> Parsed:
        regs = m.regs  # regs[k] is the span of group k
        groups = m.groups()  # groups[k - 1] is the text of group k
        steps = []
        error = ""
        g = 1
        for exact, vmap, name in self._fast_steps:
            raw = groups[g]
            verdict = exact.get(raw)  # the common case: written exactly as allowed
            if verdict is None:
                raw = raw.strip(STRIP_CHARS)
                verdict = vmap.get(raw.lower())
                if verdict is None and not error:
                    error = ("bad_verdict:" if raw else "missing_verdict:") + name
            steps.append((regs[g][0], regs[g + 2][1], verdict))
            g += 3
        pred = self._label_exact.get(groups[g])  # the common case: "3", "-1"
        if pred is None:
            pred = parse_label(groups[g], self.label_values)
            if pred is None and not error:
                error = "answer_not_a_label"
        return Parsed(tuple(steps), regs[g][0], regs[g + 2][1], pred, error, len(steps))

    def parse_slow(self, text: str) -> Parsed:
        """Tag-by-tag parse that names the first problem; handles any input.

        Problems are ranked: tag structure (per element, in schema order), then
        order, then verdicts, then the label; the first of the highest rank is
        reported.
        """
        if not text or text.isspace():
            return self._empty
        # re.split with every piece of a tag captured: the parts concatenate back
        # to the text, so their cumulative lengths are offsets. Part 5k+1 is the
        # "<" of tag event k, part 5k+5 the text after it. All C-level calls.
        parts = self._split_re.split(text)
        if len(parts) == 1:
            return self._no_tags
        offs = list(accumulate(map(len, parts), initial=0))
        keys = list(map(str.__add__, parts[2::5], parts[3::5]))  # "need" or "/need"
        n_keys = len(keys)

        err_tag = err_verdict = ""
        out_of_order = False
        last = -1
        steps = []
        ans = None
        for tag, close, name, vi in self._elements:  # vi: step index; -1 reasoning, -2 answer
            # The first opening tag counts; its closing tag must come next.
            try:
                i = keys.index(tag)
            except ValueError:
                i = -1
            if i < 0 or i + 1 == n_keys or keys[i + 1] != close:
                if vi >= 0:
                    steps.append(_ABSENT)
                if not err_tag and (i >= 0 or vi != -1):  # reasoning is optional
                    err_tag = ("unclosed_tag:" + name if i >= 0 else
                               "missing_step:" + name if vi >= 0 else "no_answer")
                continue
            if not err_tag:
                if keys.count(tag) > 1:
                    err_tag = "repeated_tag:" + name
                elif keys.count(close) > 1:
                    err_tag = "stray_close:" + name
            b = 5 * i
            start = offs[b + 1]
            if start < last:
                out_of_order = True
            last = start
            if vi >= 0:
                verdict = None
                vm = self._verdict_re.match(text, offs[b + 5], offs[b + 6])
                raw = vm.group(1).strip(STRIP_CHARS) if vm else ""
                if raw:
                    verdict = self._verdict_maps[vi].get(raw.lower())
                if verdict is None and not err_verdict:
                    err_verdict = ("bad_verdict:" if raw else "missing_verdict:") + name
                steps.append((start, offs[b + 10], verdict))
            elif vi == -2:
                ans = (start, offs[b + 10], offs[b + 5], offs[b + 6])

        pred = None
        err_label = ""
        if ans is not None:
            body = text[ans[2]:ans[3]]
            pred = self._label_exact.get(body)
            if pred is None:
                pred = parse_label(body, self.label_values)
                if pred is None:
                    err_label = "answer_not_a_label"
        error = err_tag or ("steps_out_of_order" if out_of_order else "") or err_verdict or err_label
        return Parsed(tuple(steps), ans[0] if ans else -1, ans[1] if ans else -1, pred, error,
                      sum(1 for s in steps if s[0] >= 0))


_PARSERS: dict[object, ResponseParser] = {}  # the name, path or object as given -> parser
_BY_DIGEST: dict[str, ResponseParser] = {}  # one parser per criteria content
_LOCK = threading.Lock()


class CriteriaChangedError(ValueError):
    """A data row was written with another version of its criteria than the one on disk."""


def _parser_of(crit: Criteria) -> ResponseParser:
    parser = _BY_DIGEST.get(crit.digest) if crit.digest else None
    if parser is None:
        parser = ResponseParser(crit)
        if crit.digest:
            _BY_DIGEST[crit.digest] = parser
    return parser


def get_parser(criteria: str | Criteria | None = None) -> ResponseParser:
    """The parser of a criteria name, path or object as it is now: an edited file is re-read
    (the loader checks its stamps), so rewards follow prompts. One parser per content."""
    if isinstance(criteria, Criteria):
        # A Criteria holds dicts, so it is not hashable: key it by identity (the cached
        # parser keeps it alive, so the id is not reused).
        key: object = ("object", id(criteria))
        parser = _PARSERS.get(key)
        if parser is None:
            with _LOCK:  # reward managers call from a thread pool
                parser = _PARSERS.setdefault(key, _parser_of(criteria))
        return parser
    crit = load_criteria(criteria)
    key = str(criteria or "default")
    parser = _PARSERS.get(key)
    if parser is None or parser.criteria.digest != crit.digest:
        with _LOCK:
            parser = _PARSERS[key] = _parser_of(crit)
    return parser


def parser_for_row(criteria: str | None, digest: str, cached: ResponseParser | None = None) -> ResponseParser:
    """The parser of the criteria a data row was written with, checked by the row's
    ``criteria_digest``: the cached one if it matches, else the file as it is now, else the
    parser of that content if this process has read it before; else a CriteriaChangedError
    that says what to do."""
    if cached is not None and cached.criteria.digest == digest:
        return cached
    parser = get_parser(criteria)
    if parser.criteria.digest == digest:
        return parser
    earlier = _BY_DIGEST.get(digest)
    if earlier is not None:  # the file changed after these prompts were written in this process
        return earlier
    crit = load_criteria(criteria)
    raise CriteriaChangedError(
        f"criteria '{crit.ref}' has changed since the data was written: the rows carry criteria_digest "
        f"{digest}, the file ({crit.source}) now has {crit.digest} (version {crit.version}); "
        "write the data again with this criteria (python -m data_prep ...), or restore the file "
        "the data was written with")
