"""One forward pass per pair: a model's label distribution, from its label-token logits or its
classification head.

A label-only student (``recipes.distill``, ``recipes.sft --label-only``) answers with
``<answer>L</answer>``. Instead of decoding, the prompt is teacher-forced together with the
answer's opening tokens, and the label distribution is read from the logits at the positions
where the five answers part ways. Answers may part over more than one token (the tiny
tokenizer writes ``<answer`` ``>-`` ``1`` for -1 but ``<answer`` ``>`` ``3`` for 3), so the
answers' token sequences form a trie: the path that several labels share is fed with the
prompt, and each label's probability is the product of its tokens' probabilities along it,
all read from the same forward pass.

From the distribution (renormalised over the labels):

* ``label``: the greedy walk through the trie (at each branch the most likely of its tokens),
  i.e. the label greedy decoding writes whenever its choices stay on label tokens;
* ``expected``: E[y] = sum_l p(l) * l, the ranking score;
* ``label_mass``: the unnormalised probability of writing any well-formed answer prefix + label
  (low: the model is not answering in the trained format).

A model with a sequence-classification head (``recipes.classifier``: the paper's traditional
relevance model) is read by ``ClassifierHeadScorer`` instead: the head's softmax over the labels
its config names (``id2label``), with the same ``label``/``expected`` and a ``label_mass`` of 1.
``load_scorer`` picks the reader from the folder's config.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

from evaluation.generation import load_tokenizer, resolve_device


class ScorerError(ValueError):
    """The model cannot be scored in one pass (its tokenizer or folder does not allow it)."""


@dataclass(frozen=True)
class LabelScores:
    label: int
    expected: float
    probs: dict[int, float]  # label -> probability, summing to 1
    label_mass: float


@dataclass(frozen=True)
class LabelTrie:
    """What to feed after the prompt and where to read each label's tokens.

    ``path``: token ids fed after the prompt. ``reads[label]``: (position, token) pairs whose
    log-probabilities sum to the label's; position k is the logit row predicting path[k]
    (k == len(path): the token after the whole path). ``branches[k]``: at position k, the
    tokens a greedy decoder may choose, each with the label it settles or None (go on).
    """

    path: tuple[int, ...]
    reads: dict[int, tuple[tuple[int, int], ...]]
    branches: dict[int, tuple[tuple[int, int | None], ...]]


def build_label_trie(answer_ids: dict[int, Sequence[int]]) -> LabelTrie:
    """The trie of the labels' answer token sequences, cut where each label becomes unique.

    Raises ScorerError when the labels cannot be told apart along one fed path (two groups of
    labels sharing a token at the same branch, or one answer a prefix of another).
    """
    labels = list(answer_ids)
    seqs = {lab: tuple(answer_ids[lab]) for lab in labels}
    path: list[int] = []
    reads: dict[int, tuple[tuple[int, int], ...]] = {}
    branches: dict[int, tuple[tuple[int, int | None], ...]] = {}
    alive = labels
    while len(alive) > 1:
        k = len(path)
        if any(len(seqs[lab]) <= k for lab in alive):
            raise ScorerError(f"the answers of labels {alive} are prefixes of one another; "
                              "they cannot be told apart by their tokens")
        groups: dict[int, list[int]] = {}
        for lab in alive:
            groups.setdefault(seqs[lab][k], []).append(lab)
        shared = [tok for tok, labs in groups.items() if len(labs) > 1]
        if len(shared) > 1:
            raise ScorerError(f"labels {[groups[t] for t in shared]} part in two groups at answer token {k}; "
                              "one forward pass can follow only one of them")
        if len(groups) > 1:
            branches[k] = tuple((tok, labs[0] if len(labs) == 1 else None) for tok, labs in groups.items())
        for tok, labs in groups.items():
            if len(labs) == 1:
                reads[labs[0]] = tuple(zip(range(k + 1), (*path, tok)))
        alive = groups[shared[0]] if shared else []
        if shared:
            path.append(shared[0])
    if alive:  # a single label: nothing to tell apart
        reads[alive[0]] = ((0, seqs[alive[0]][0]),)
    return LabelTrie(tuple(path), reads, branches)


class _BatchedScorer:
    """Length-sorted batches (less padding) through ``_score_batch``, results in input order."""

    batch_size: int

    def score(self, prompt_ids: Sequence[Sequence[int]], progress: bool = False) -> list[LabelScores]:
        """Scores for each prompt (token ids of the rendered chat, generation prompt included)."""
        from tqdm.auto import tqdm

        order = sorted(range(len(prompt_ids)), key=lambda i: -len(prompt_ids[i]))
        out: list[LabelScores | None] = [None] * len(prompt_ids)
        bar = tqdm(total=len(order), desc="score", unit="pair", disable=not progress)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            for i, s in zip(idx, self._score_batch([prompt_ids[i] for i in idx])):
                out[i] = s
            bar.update(len(idx))
        bar.close()
        return out  # type: ignore[return-value]

    def _score_batch(self, batch_ids: Sequence[Sequence[int]]) -> list[LabelScores]:
        raise NotImplementedError

    # Every prompt opens with the same system message and criteria (most of its tokens): their
    # keys and values are computed once, by the backbone, and shared by every batch.
    prefix_cache = True
    min_prefix_tokens = 8
    _prefix: list[int] | None = None
    _prefix_cache = None

    def _shared_prefix(self, batch_ids: Sequence[Sequence[int]]) -> int:
        """Tokens every prompt seen so far starts with (the system message and the criteria).

        It only shrinks, so its key/value cache is recomputed a few times at most. At least one
        prompt token of each row is left to run, so every row has a suffix.
        """
        prefix = self._prefix if self._prefix is not None else list(batch_ids[0])
        n = min(len(prefix), min(len(ids) for ids in batch_ids) - 1)
        for ids in batch_ids:
            if list(ids[:n]) != prefix[:n]:
                n = next(k for k, (a, b) in enumerate(zip(ids, prefix[:n])) if a != b)
        if self._prefix is None or n != len(self._prefix):
            self._set_prefix(prefix[:n])
        return n

    def _set_prefix(self, prefix: list[int]) -> None:
        import torch

        self._prefix, self._prefix_cache = prefix, None
        if len(prefix) >= self.min_prefix_tokens:
            with torch.inference_mode():
                out = self.model.base_model(input_ids=torch.tensor([prefix], device=self.device), use_cache=True)
            self._prefix_cache = out.past_key_values

    def _inputs_after_prefix(self, batch_ids: Sequence[Sequence[int]], suffix: Sequence[int] = ()) -> dict:
        """The model's inputs for the rows (each followed by ``suffix``), left-padded, past their
        shared prefix when its cache is there (then with the cache, repeated for the batch)."""
        import copy

        import torch

        n = self._shared_prefix(batch_ids) if self.prefix_cache else 0
        cached = n if n and self._prefix_cache is not None else 0
        rows = [list(ids[cached:]) + list(suffix) for ids in batch_ids]
        input_ids, mask, position_ids = left_padded(rows, self.tokenizer.pad_token_id)
        inputs = {}
        if cached:
            cache = copy.deepcopy(self._prefix_cache)
            cache.batch_repeat_interleave(len(rows))
            mask = torch.cat([torch.ones((len(rows), cached), dtype=torch.long), mask], dim=1)
            inputs = {"past_key_values": cache, "use_cache": True}
        return {"input_ids": input_ids.to(self.device), "attention_mask": mask.to(self.device),
                "position_ids": (cached + position_ids).to(self.device), **inputs}


class LabelTokenScorer(_BatchedScorer):
    """A causal LM read at its answer's label tokens, in left-padded batches."""

    kind = "label_tokens"

    def __init__(self, model_path: str, device: str = "auto", batch_size: int = 32,
                 answer_format: str = "<answer>{label}</answer>", label_values: Sequence[int] = (-1, 0, 1, 2, 3),
                 prefix_cache: bool = True):
        import torch
        from transformers import AutoModelForCausalLM

        start = time.perf_counter()
        self.model_path, self.device, self.batch_size = str(model_path), resolve_device(device), max(1, batch_size)
        self.tokenizer = load_tokenizer(self.model_path)
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=dtype).to(self.device)
        self.model.eval()
        self.labels = tuple(int(v) for v in label_values)
        # The answer as training tokenised it: on its own, after the rendered prompt.
        self.trie = build_label_trie({lab: self.tokenizer(answer_format.format(label=lab), add_special_tokens=False)
                                      ["input_ids"] for lab in self.labels})
        self._compile_reads()
        self.prefix_cache = prefix_cache
        self.load_seconds = time.perf_counter() - start

    def _compile_reads(self) -> None:
        import torch

        pos, tok, owner = [], [], []
        for i, lab in enumerate(self.labels):
            for p, t in self.trie.reads[lab]:
                pos.append(p)
                tok.append(t)
                owner.append(i)
        self._pos, self._tok = torch.tensor(pos), torch.tensor(tok)
        # (labels x reads) 0/1 matrix: a label's log-prob is the sum of its reads.
        self._owner = torch.zeros(len(self.labels), len(pos))
        self._owner[owner, range(len(pos))] = 1.0
        self._values = torch.tensor(self.labels, dtype=torch.float32)

    def _score_batch(self, batch_ids: Sequence[Sequence[int]]) -> list[LabelScores]:
        import torch

        logp = self._label_logits(batch_ids)
        read = logp[:, self._pos, self._tok]  # (batch, reads)
        label_logp = read @ self._owner.T  # (batch, labels)
        mass = label_logp.exp().sum(-1)
        probs = torch.softmax(label_logp, dim=-1)
        expected = probs @ self._values
        greedy = self._greedy_labels(logp)
        rows = probs.tolist()
        return [LabelScores(g, float(e), dict(zip(self.labels, p)), float(m))
                for g, e, p, m in zip(greedy, expected.tolist(), rows, mass.tolist())]

    def _label_logits(self, batch_ids: Sequence[Sequence[int]]):
        """Log-probabilities (batch, len(path) + 1, vocab) at the positions that predict the path
        and the token after it; the shared prompt prefix runs once and is reused from its cache."""
        import torch

        path = list(self.trie.path)
        # left padding: every row ends where the labels are read
        inputs = self._inputs_after_prefix(batch_ids, suffix=path)
        with torch.inference_mode():
            logits = self.model(**inputs, logits_to_keep=len(path) + 1).logits
            return torch.log_softmax(logits.float(), dim=-1).cpu()

    def _greedy_labels(self, logp) -> list[int]:
        """Walk the trie choosing the likeliest branch token, as greedy decoding would."""
        out = []
        for row in logp:
            k = min(self.trie.branches)
            while True:
                toks = self.trie.branches[k]
                best = max(toks, key=lambda t: float(row[k, t[0]]))
                if best[1] is not None:
                    out.append(best[1])
                    break
                k = min(b for b in self.trie.branches if b > k)
        return out


def left_padded(batch_ids: Sequence[Sequence[int]], pad_id: int):
    """(input_ids, attention_mask, position_ids) of left-padded rows: every row ends at the last column."""
    import torch

    width = max(len(r) for r in batch_ids)
    input_ids = torch.full((len(batch_ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch_ids), width), dtype=torch.long)
    for i, r in enumerate(batch_ids):
        if len(r):
            input_ids[i, width - len(r):] = torch.tensor(list(r))
            mask[i, width - len(r):] = 1
    return input_ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


class ClassifierHeadScorer(_BatchedScorer):
    """A backbone with a sequence-classification head: the head's label distribution per prompt."""

    kind = "classification_head"

    def __init__(self, model_path: str, device: str = "auto", batch_size: int = 32, prefix_cache: bool = True):
        import torch
        from transformers import AutoModelForSequenceClassification

        start = time.perf_counter()
        self.model_path, self.device, self.batch_size = str(model_path), resolve_device(device), max(1, batch_size)
        self.tokenizer = load_tokenizer(self.model_path)
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForSequenceClassification.from_pretrained(self.model_path, dtype=dtype).to(self.device)
        self.model.eval()
        try:
            self.labels = tuple(int(self.model.config.id2label[i]) for i in range(self.model.config.num_labels))
        except (KeyError, ValueError):
            raise ScorerError(f"{model_path}: the head's id2label {self.model.config.id2label} does not name "
                              "relevance labels (integers)") from None
        self._values = torch.tensor(self.labels, dtype=torch.float32)
        self.prefix_cache = prefix_cache
        self.load_seconds = time.perf_counter() - start

    def _score_batch(self, batch_ids: Sequence[Sequence[int]]) -> list[LabelScores]:
        import torch

        with torch.inference_mode():  # the head reads the last column: every row's last token
            logits = self.model(**self._inputs_after_prefix(batch_ids)).logits.float().cpu()
        probs = torch.softmax(logits, -1)
        return [LabelScores(self.labels[best], float(e), dict(zip(self.labels, row)), 1.0)
                for row, e, best in zip(probs.tolist(), (probs @ self._values).tolist(), probs.argmax(-1).tolist())]


def is_classifier_folder(folder) -> bool:
    """Whether a model folder's config names a sequence-classification architecture."""
    import json
    from pathlib import Path

    try:
        config = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return any(str(a).endswith("ForSequenceClassification") for a in config.get("architectures") or [])


def load_scorer(model_path: str, device: str = "auto", batch_size: int = 32):
    """A one-pass scorer for a model folder (its classification head if it has one, else its label
    tokens); ScorerError with one line when it cannot be one."""
    from pathlib import Path

    folder = Path(model_path)
    if not folder.is_dir():
        raise ScorerError(f"{folder}: no such model folder")
    if not (folder / "config.json").is_file():
        raise ScorerError(f"{folder}: not a Hugging Face model folder (no config.json)")
    try:
        if is_classifier_folder(folder):
            return ClassifierHeadScorer(str(folder), device=device, batch_size=batch_size)
        return LabelTokenScorer(str(folder), device=device, batch_size=batch_size)
    except ScorerError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ScorerError(f"{folder}: cannot load the model ({first})") from None


__all__ = ["ClassifierHeadScorer", "LabelScores", "LabelTokenScorer", "LabelTrie", "ScorerError", "build_label_trie",
           "is_classifier_folder", "left_padded", "load_scorer"]
