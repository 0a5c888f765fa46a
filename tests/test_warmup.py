"""The supervised format warm-up behind `tiny-sft` (a few steps on the tiny model)."""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from data_prep.benchmark import BenchmarkConfig, generate_benchmark
from data_prep.prompt import render_prompt
from model_zoo import resolve_model
from model_zoo.warmup import _examples, supervised_warmup


def conversations(n=4):
    cfg = BenchmarkConfig(seed=1, train_size=20, val_size=5, test_random_size=5, test_longtail_size=5, sft_size=n)
    rows = [r for r in generate_benchmark(cfg)["train"] if r.get("reasoning")]
    return [render_prompt(r["query"], r["title"], r["content"], r["tags"])
            + [{"role": "assistant", "content": r["reasoning"]}] for r in rows]


def test_loss_masks_the_prompt():
    tok = AutoTokenizer.from_pretrained(resolve_model("tiny"))
    conv = conversations(2)
    for (ids, start), messages in zip(_examples(tok, conv, 4096), conv):
        assert tok.decode(ids[start:]).startswith(messages[-1]["content"][:20])
        assert ids[-1] == tok.eos_token_id


def test_warmup_lowers_the_loss_and_saves_a_loadable_model(tmp_path):
    threads = torch.get_num_threads()
    seen = []
    facts = supervised_warmup(resolve_model("tiny"), conversations(), tmp_path, steps=8, batch_size=2, lr=1e-2,
                              on_step=lambda step, model, tok: seen.append((step, model.training)))
    assert seen == [(s, True) for s in range(1, 9)]  # after every optimiser step, in training mode
    assert torch.get_num_threads() == threads  # the caller's setting is restored
    assert facts["final_loss"] < facts["first_loss"]
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    out = model.generate(**tok("<query_analysis>", return_tensors="pt"), max_new_tokens=4, do_sample=False)
    assert out.shape[1] > 1
