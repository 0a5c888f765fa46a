"""Throughput of `python -m data_prep convert` on synthetic query-note pairs.

    python benchmarks/bench_convert.py [--rows 200000] [--repeats 3] [--lang en]
                                       [--reasoning-frac 0.0] [--bad-frac 0.01] [--profile]

Writes N realistic rows (short queries, note titles, bodies of a few hundred
characters, hashtags, a label, a few per-step annotations and a small share of
broken rows) as JSONL into a temporary folder, streaming, then converts the file
`--repeats` times in this process (one core) and prints rows/s per run with the
min and median (wall clock, and per CPU-second, which background load
disturbs less), the machine load, and the peak RSS. The input is generated and
read as a stream and the output written in chunks, so memory stays bounded:
only the set of row ids seen (for duplicate detection) grows with the input,
by about 60 MiB per million rows. Target: 20k rows/s.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_prep.convert import convert_file  # noqa: E402

TARGET_PER_S = 20_000

_SUBJECTS_EN = ["hotpot", "sunscreen", "hiking trail", "mechanical keyboard", "matcha latte",
                "budget hotel", "running shoes", "skincare routine", "sourdough bread",
                "camping tent", "coffee grinder", "yoga mat", "ramen shop", "rice cooker"]
_PLACES_EN = ["Chengdu", "Shanghai", "Hangzhou", "Kyoto", "Lisbon", "Osaka", "Xiamen"]
_QUALIFIERS_EN = ["cheap", "best", "for beginners", "near me", "review", "how to choose",
                  "under 200 yuan", "for kids", "in winter", "recommendation", "vs"]
_SENTENCES_EN = [
    "I finally tried the {s} everyone keeps posting about, and here is my honest take.",
    "We went on a weekday afternoon in {p}, so there was no queue at all.",
    "Prices start at about 80 yuan per person, which felt fair for the portion size.",
    "The staff were friendly and explained every option on the menu in detail.",
    "If you are a beginner, start with the basic version before buying the expensive one.",
    "Compared with the two alternatives I tested last month, this one lasts much longer.",
    "Photos below: the packaging, the texture up close and the result after a week.",
    "One downside is the location, about twenty minutes from the nearest metro station.",
    "Save this note if you plan a trip to {p} this spring; I will update the list.",
    "My friends asked for the link so many times that I decided to write it all down.",
]
_TAGS_EN = ["travel", "food", "review", "budget", "skincare", "outdoor", "diy", "cafe", "home",
            "fitness", "weekend", "guide"]

_SUBJECTS_ZH = ["火锅", "防晒霜", "徒步路线", "机械键盘", "抹茶拿铁", "经济型酒店", "跑鞋", "护肤步骤",
                "酸面包", "露营帐篷", "磨豆机", "瑜伽垫", "拉面店", "电饭煲"]
_PLACES_ZH = ["成都", "上海", "杭州", "京都", "里斯本", "大阪", "厦门"]
_QUALIFIERS_ZH = ["平价", "推荐", "新手", "附近", "测评", "怎么选", "200元以内", "儿童", "冬天", "攻略"]
_SENTENCES_ZH = [
    "终于去试了大家都在晒的{s}，说说我的真实感受。",
    "我们是工作日下午去的{p}，完全不用排队。",
    "人均大概八十元，分量来说还算合理。",
    "店员很热情，把菜单上每个选项都讲得很清楚。",
    "如果是新手，建议先买基础款，再考虑贵的。",
    "和上个月试过的两款相比，这款持久很多。",
    "下面是图：包装、质地特写和用了一周的效果。",
    "缺点是位置有点偏，离最近的地铁站要走二十分钟。",
    "今年春天要去{p}的可以先收藏，我会持续更新。",
    "朋友问了太多次链接，干脆整理成一篇笔记。",
]
_TAGS_ZH = ["旅行", "美食", "测评", "平价", "护肤", "户外", "手工", "咖啡", "家居", "健身", "周末", "攻略"]


def _pools(rng: random.Random, lang: str, size: int = 4000):
    """Pools of queries, titles and bodies; rows combine them (generating each row would dominate)."""
    zh = lang == "zh"
    subjects, places = (_SUBJECTS_ZH, _PLACES_ZH) if zh else (_SUBJECTS_EN, _PLACES_EN)
    qualifiers, sentences = (_QUALIFIERS_ZH, _SENTENCES_ZH) if zh else (_QUALIFIERS_EN, _SENTENCES_EN)
    sep = "" if zh else " "
    queries, titles, bodies = [], [], []
    for _ in range(size):
        s, p = rng.choice(subjects), rng.choice(places)
        words = ([p] if rng.random() < 0.3 else []) + [s] + \
            ([rng.choice(qualifiers)] if rng.random() < 0.6 else [])
        queries.append(sep.join(words))
        titles.append(f"{p}{s}" + ("｜" if zh else " | ") + rng.choice(qualifiers))
        n = rng.randint(2, 12)
        bodies.append(sep.join(rng.choice(sentences).format(s=s, p=p) for _ in range(n)))
    return queries, titles, bodies, (_TAGS_ZH if zh else _TAGS_EN)


def _without_note(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("title", "content")}


_BROKEN = [  # the kinds of broken rows a real export has (about 1%)
    _without_note,
    lambda row: {**row, "label": 7},
    lambda row: {**row, "label": "relevant"},
    lambda row: {**row, "query": ""},
    lambda row: {**row, "content": "x" * 9000},
]


def write_input(path: Path, rows: int, lang: str = "en", reasoning_frac: float = 0.0,
                bad_frac: float = 0.01, seed: int = 0) -> int:
    """Stream `rows` JSONL lines to `path`; returns the number of bytes written."""
    rng = random.Random(seed)
    queries, titles, bodies, tags = _pools(rng, lang)
    gold_for = {3: ("exact", "met"), 2: ("exact", "met"), 1: ("exact", "unmet"),
                0: ("related", None), -1: ("unrelated", None)}
    n_pool = len(queries)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(rows):
            label = rng.choice((3, 3, 2, 1, 1, 0, -1))
            row = {"id": f"n{i:08d}", "query": queries[rng.randrange(n_pool)],
                   "title": titles[rng.randrange(n_pool)], "content": bodies[rng.randrange(n_pool)],
                   "tags": rng.sample(tags, rng.randint(0, 4)), "label": label}
            if rng.random() < 0.05:  # a few rows carry per-step annotations
                sm, need = gold_for[label]
                row["step_gold"] = {"subject_match": sm} if need is None else \
                    {"subject_match": sm, "need": need}
            if reasoning_frac and rng.random() < reasoning_frac:
                row["reasoning"] = "<subject_match>\nsame subject\nVerdict: exact\n</subject_match>"
            if bad_frac and rng.random() < bad_frac:
                row = rng.choice(_BROKEN)(row)
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path.stat().st_size


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--lang", default="en", choices=("en", "zh"))
    p.add_argument("--reasoning-frac", type=float, default=0.0,
                   help="share of rows with a reasoning trace (also written as SFT parquet)")
    p.add_argument("--bad-frac", type=float, default=0.01, help="share of broken rows")
    p.add_argument("--profile", action="store_true", help="cProfile one extra run, print the top")
    p.add_argument("--keep", help="write the input and outputs here instead of a temporary folder")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        src = root / "pairs.jsonl"
        t0 = time.perf_counter()
        size = write_input(src, args.rows, args.lang, args.reasoning_frac, args.bad_frac)
        print(f"generated {args.rows} rows ({size / 2**20:.0f} MiB JSONL) in "
              f"{time.perf_counter() - t0:.1f} s; peak RSS so far {_peak_rss_mb():.0f} MiB")

        rates, cpu_rates = [], []
        for r in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            summary = convert_file(src, root / f"out{r}", lang=args.lang, progress=False)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            rates.append(args.rows / seconds)
            cpu_rates.append(args.rows / cpu)
            print(f"run {r + 1}: {rates[-1]:,.0f} rows/s wall ({seconds:.2f} s), {cpu_rates[-1]:,.0f} "
                  f"rows per CPU-second; written {summary['rows_written']}, rejected "
                  f"{summary['rows_rejected']}; peak RSS {_peak_rss_mb():.0f} MiB")
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            convert_file(src, root / "out_profile", lang=args.lang, progress=False)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"rows/s (wall): min {min(rates):,.0f}, median {statistics.median(rates):,.0f}, "
          f"max {max(rates):,.0f} (target {TARGET_PER_S:,}); rows per CPU-second: median "
          f"{statistics.median(cpu_rates):,.0f}; load average {load} on {os.cpu_count()} cores; "
          f"peak RSS {_peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
