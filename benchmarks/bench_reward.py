"""Throughput of the default reward next to verl's built-in gsm8k scorer.

Both run in this process on one core over strings of similar length (1-2 KB):
criteria-guided responses (70% well-formed, 30% malformed in various ways,
built with `data_prep.prompt.format_response`) for ours, GSM8K-style worked
solutions ending in "#### <answer>" for gsm8k.

    python benchmarks/bench_reward.py [--n 4000] [--repeats 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verl.utils.reward_score import gsm8k  # noqa: E402

from data_prep.criteria import load_criteria  # noqa: E402
from data_prep.prompt import format_response  # noqa: E402
from reward import compute_score  # noqa: E402

TARGET_PER_S = 50_000

_SUBJECTS = ["hotpot restaurant", "sunscreen", "hiking trail", "mechanical keyboard",
             "matcha latte", "budget hotel", "running shoes", "skincare routine"]
_PLACES = ["Chengdu", "Shanghai", "Hangzhou", "Kyoto", "Lisbon"]
_FILLER = [
    "The note's title names {s} directly and the body spends most of its length on it.",
    "The author describes a personal visit in {p}, with photos, prices and opening hours.",
    "Several paragraphs compare it with two alternatives, which is useful context for a searcher.",
    "The query is short, so its intent has to be inferred from the wording and the usual searches.",
    "There is no mention of a price range, an audience or a season in the query itself.",
    "The tags on the note repeat the subject and add a location tag for {p}.",
    "A passing mention would not be enough here: the note must actually help with the task.",
    "Comments quoted in the note confirm that readers used it as a guide.",
]


def _text(rng: random.Random, n_sentences: int) -> str:
    s, p = rng.choice(_SUBJECTS), rng.choice(_PLACES)
    return " ".join(rng.choice(_FILLER).format(s=s, p=p) for _ in range(n_sentences))


def _valid(rng: random.Random, crit, lang: str) -> tuple[str, int]:
    label = rng.choice(crit.label_values)
    gold = crit.gold_steps(label)
    steps = {}
    for step in crit.steps:
        accepted = gold[step.name] or list(step.verdicts)
        steps[step.name] = (_text(rng, rng.randint(3, 5)), rng.choice(accepted))
    return format_response(steps, label, crit, lang=lang), label


def _malformed(rng: random.Random, text: str) -> str:
    kind = rng.randrange(6)
    if kind == 0:  # truncated mid-generation
        return text[: rng.randrange(len(text))]
    if kind == 1:  # a step dropped
        start = text.find("<need>")
        return text[:start] + text[text.find("</need>") + len("</need>"):]
    if kind == 2:  # a verdict outside the allowed set
        return text.replace("Verdict: exact", "Verdict: probably", 1).replace(
            "Verdict: related", "Verdict: maybe", 1)
    if kind == 3:  # a repeated step
        start, end = text.find("<constraints>"), text.find("</constraints>") + 14
        return text[:end] + "\n" + text[start:end] + text[end:]
    if kind == 4:  # no answer tag
        return text[: text.find("<answer>")] + "So the level is 2."
    return text.replace("<answer>", "<answer>level ", 1)  # not a label


def relevance_corpus(n: int, seed: int = 0) -> list[tuple[str, str, dict]]:
    rng = random.Random(seed)
    crit = load_criteria("default")
    out = []
    for _ in range(n):
        lang = "zh" if rng.random() < 0.2 else "en"
        text, label = _valid(rng, crit, lang)
        if rng.random() < 0.3:
            text = _malformed(rng, text)
        out.append((text, str(label), {"lang": lang, "split": "train", "index": len(out)}))
    return out


def gsm8k_corpus(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        lines = []
        total = 0
        while sum(len(x) for x in lines) < rng.randint(1000, 1900):
            a, b = rng.randint(2, 90), rng.randint(2, 40)
            total += a * b
            lines.append(f"Each box holds {a} apples and there are {b} boxes, so that is "
                         f"{a} * {b} = <<{a}*{b}={a * b}>>{a * b} apples in this shipment. ")
        answer = str(total if rng.random() < 0.7 else total + 1)
        out.append(("".join(lines) + f"\n#### {answer}", str(total)))
    return out


def _rates(corpora: dict[str, list], score_fns: dict, repeats: int, chunk: int = 200) -> dict:
    """Responses per second of CPU time, and of wall time, for each corpus.

    Each corpus is cut into chunks of `chunk` responses; every chunk is timed
    `repeats` times and its fastest time kept. Short timed pieces and the
    minimum make the figure robust to other processes on a shared machine
    (what is left is the scorer's own cost); the scorers alternate so that
    they see the same conditions. CPU time (this process only) is the per-core
    figure.
    """
    best = {name: [[float("inf"), float("inf")] for _ in range(0, len(c), chunk)]
            for name, c in corpora.items()}
    for _ in range(repeats):
        for name, corpus in corpora.items():
            fn = score_fns[name]
            for k, lo in enumerate(range(0, len(corpus), chunk)):
                piece = corpus[lo:lo + chunk]
                c0, w0 = time.process_time(), time.perf_counter()
                for args in piece:
                    fn(*args)
                cpu, wall = time.process_time() - c0, time.perf_counter() - w0
                slot = best[name][k]
                slot[0], slot[1] = min(slot[0], cpu), min(slot[1], wall)
    return {name: (len(corpora[name]) / sum(b[0] for b in best[name]),
                   len(corpora[name]) / sum(b[1] for b in best[name])) for name in corpora}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000, help="responses per scorer")
    ap.add_argument("--repeats", type=int, default=15, help="timings per chunk (fastest kept)")
    ap.add_argument("--profile", action="store_true", help="cProfile one pass of ours")
    opts = ap.parse_args()

    ours = relevance_corpus(opts.n)
    theirs = gsm8k_corpus(opts.n)

    def ours_fn(text, gt, info):
        return compute_score("relevance", text, gt, info)

    # Also warms the caches (criteria, parsers, gold) before timing.
    results = [ours_fn(*x) for x in ours]
    if opts.profile:
        prof = cProfile.Profile()
        prof.runcall(lambda: [ours_fn(*x) for x in ours])
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)

    well_formed = [x for x, r in zip(ours, results) if r["format_ok"]]
    malformed = [x for x, r in zip(ours, results) if not r["format_ok"]]
    rates = _rates(
        {"ours": ours, "gsm8k": theirs, "well_formed": well_formed, "malformed": malformed},
        {"ours": ours_fn, "gsm8k": gsm8k.compute_score, "well_formed": ours_fn, "malformed": ours_fn},
        opts.repeats)
    (ours_rate, ours_wall), (gsm_rate, gsm_wall) = rates["ours"], rates["gsm8k"]
    mean_bytes = lambda xs: round(sum(len(x[0].encode("utf-8")) for x in xs) / len(xs))  # noqa: E731
    report = {
        "responses": len(ours),
        "ours_mean_bytes": mean_bytes(ours),
        "gsm8k_mean_bytes": mean_bytes(theirs),
        "ours_well_formed_fraction": round(len(well_formed) / len(ours), 3),
        "ours_per_cpu_s": round(ours_rate),
        "gsm8k_per_cpu_s": round(gsm_rate),
        "ours_per_wall_s": round(ours_wall),
        "gsm8k_per_wall_s": round(gsm_wall),
        "ours_well_formed_per_cpu_s": round(rates["well_formed"][0]),
        "ours_malformed_per_cpu_s": round(rates["malformed"][0]),
        "ours_over_gsm8k": round(ours_rate / gsm_rate, 3),
        "target_per_s": TARGET_PER_S,
        "meets_target": ours_rate >= TARGET_PER_S,
    }
    print(f"default reward : {ours_rate:10,.0f} responses/s per core  (wall {ours_wall:,.0f}/s; "
          f"mean {report['ours_mean_bytes']} B, {report['ours_well_formed_fraction']:.0%} well-formed)")
    print(f"  well-formed only {rates['well_formed'][0]:,.0f}/s, "
          f"malformed only {rates['malformed'][0]:,.0f}/s")
    print(f"verl gsm8k     : {gsm_rate:10,.0f} responses/s per core  (wall {gsm_wall:,.0f}/s; "
          f"mean {report['gsm8k_mean_bytes']} B)")
    print(f"ratio ours/gsm8k: {ours_rate / gsm_rate:.3f}   target {TARGET_PER_S:,}/s per core: "
          f"{'met' if report['meets_target'] else 'NOT met'}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
