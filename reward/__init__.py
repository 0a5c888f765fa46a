"""Rule-based rewards for criteria-guided relevance judgements, for verl 0.9.1.

Use in a verl config (Hydra overrides; verl's ``reward.yaml`` has no
``reward_kwargs`` key, hence the leading ``+``)::

    reward.custom_reward_function.path=pkg://reward
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.variant=ordinal
    +reward.custom_reward_function.reward_kwargs.ordinal_lambda=0.5
    +reward.custom_reward_function.reward_kwargs.criteria=default

verl 0.9.1 (``verl.trainer.ppo.reward.get_custom_reward_fn``) wraps the function
so that every ``reward_kwargs`` entry is passed as a keyword argument on every
call, taking precedence over the reward manager's own keywords. Instead of
``variant=...`` one may select ``name=compute_score_outcome``,
``compute_score_ordinal`` or ``compute_score_format_penalty``. With the project
installed, a file path works too, but only this file:
``path=<checkout>/reward/__init__.py`` (verl executes a file outside
``sys.modules``, where the dataclasses in ``reward.scoring`` cannot be built).

Keyword arguments (all optional; anything else raises ValueError):
  variant         "outcome" (default): 1.0 if well-formed and pred == label, else 0.0.
                  "ordinal": as outcome, plus ``ordinal_lambda`` when well-formed and
                  the label ranks differ by one. Range [0, 1].
                  "format_penalty": as outcome, but ``format_penalty`` for malformed
                  output. Range [format_penalty, 1].
  ordinal_lambda  partial credit in [0, 1], default 0.5.
  format_penalty  score of malformed output, a finite number <= 0, default -1.0.
  criteria        criteria name or YAML path; else ``extra_info["criteria"]``, else "default".
verl's own ``reward_router_address`` / ``reward_model_tokenizer`` are ignored.

Inputs: ``ground_truth`` is a label as int or string ("3", "-1"); a bool is not a
label. ``extra_info`` is a mapping or None; its ``criteria`` a name or path (text).
``extra_info["step_gold"]`` (optional; a JSON string or a mapping) maps step
names to a list of accepted verdicts (a single string is allowed) or null. Its
entries override the gold derived from the label (``Criteria.gold_steps``);
null or [] makes a step unverifiable; steps it omits keep the label's gold.
``extra_info["lang"]`` is not needed: both verdict markers ("Verdict:" and
"结论:", either colon, any case) are always accepted. ``extra_info["criteria_digest"]``
(written by ``data_prep``, optional) is the content hash of the criteria the prompt was
written with: when the criteria file now holds something else, the reward raises
``CriteriaChangedError`` (a ValueError) saying so. Bad data (a ground truth
that is not a label, an extra_info or criteria of another type, unknown steps or
verdicts in step_gold, a step_gold nested too deeply) raises ValueError; model
output never raises.

Tags are matched exactly as the prompt writes them (case-sensitive: "<Need>" is
not "<need>"). Well-formed (stepwise criteria) means: every step tag present
exactly once, each opening tag directly followed by its closing tag (no other
step/answer tag in between), steps in schema order, each step's last verdict
marker followed by an allowed verdict (case-insensitive; surrounding whitespace,
quotes, markdown and punctuation ignored), and then exactly one answer tag
holding a label of the criteria. Text before, between and after the tags is
allowed. For a free-form criteria: an optional reasoning tag (``<think>``) at
most once and before the answer, then exactly one answer with a valid label;
there are no steps. A label that contradicts the verdicts
(``Criteria.label_from_verdicts``) does not make a response malformed: it is
reported in ``consistent``.

When a tag repeats, its FIRST occurrence is the one parsed (its span, verdict or
label) and the response is malformed (``repeated_tag:<step>``).

``format_error`` is "" when well-formed, otherwise the first problem found,
checking the tags in the order they must appear (reasoning tag, steps, answer),
then their order, then the verdicts (in step order), then the label:
  empty                      the response is empty or whitespace
  missing_step:<step>        no opening tag for the step
  unclosed_tag:<tag>         the first opening tag is not directly followed by its
                             closing tag (no closing tag, or another tag first)
  repeated_tag:<tag>         the opening tag occurs more than once
  stray_close:<tag>          a second closing tag (one without an opening tag)
  no_answer                  no answer tag
  steps_out_of_order         the complete tags are not in schema order (answer last)
  missing_verdict:<step>     no verdict marker in the step, or nothing after it
  bad_verdict:<step>         the verdict is not one of the step's allowed verdicts
  answer_not_a_label         the answer holds no valid label
(``<step>`` is the step name; ``<tag>`` is the step name, or the answer/reasoning tag.)

Every call returns the same keys (verl requires it), scalars or strings:
  score           float, per the variant
  acc             float, 1.0 if the parsed label equals the gold label (format aside)
  pred            int, the parsed label, or -99 when none could be read
  format_ok       float, 1.0 / 0.0
  format_error    str, the reason code above
  num_steps       int, steps with a complete span
  step_acc        float, num_correct / num_verifiable; -1.0 when no step is verifiable
                  (free-form criteria, or all gold null). Aggregate over a batch as
                  sum(num_correct) / sum(num_verifiable), not as a mean of step_acc.
  num_verifiable  int, steps with gold (absent steps count: they are not correct)
  num_correct     int, verifiable steps whose verdict is accepted
  consistent      float, 1.0 if the verdicts imply the predicted label, 0.0 if not,
                  -1.0 when undecidable (no label read, a step without an allowed
                  verdict, or a criteria without label rules)
  steps           str, JSON:
                  {"steps": [{"name": str, "verdict": str | null, "correct": 1 | 0 | -1,
                              "start": int, "end": int}, ...],   # schema order
                   "answer": {"start": int, "end": int}}
                  verdict: the criteria's spelling, null when missing or not allowed.
                  correct: 1 accepted, 0 wrong (a missing or bad verdict is wrong),
                  -1 unverifiable or step absent.
                  start/end: character offsets into solution_str, solution_str[start:end]
                  runs from the "<" of the opening tag to the ">" of the closing tag;
                  -1/-1 when there is no complete span. Spans never overlap. The
                  free-form criteria gives "steps": [].
                  The offsets index the exact string verl passes as solution_str
                  (the naive reward manager decodes the valid response tokens with
                  skip_special_tokens=True); mapping them to tokens is the reward
                  manager's job.
"""

from reward.parser import CriteriaChangedError, Parsed, ResponseParser, get_parser, parse_label
from reward.scoring import (
    NO_PRED,
    RESULT_KEYS,
    UNVERIFIABLE,
    VARIANTS,
    RewardConfig,
    compute_score,
    compute_score_format_penalty,
    compute_score_ordinal,
    compute_score_outcome,
    make_config,
    score_response,
)

__all__ = [
    "NO_PRED", "RESULT_KEYS", "UNVERIFIABLE", "VARIANTS", "CriteriaChangedError", "Parsed", "ResponseParser",
    "RewardConfig", "compute_score", "compute_score_format_penalty",
    "compute_score_ordinal", "compute_score_outcome", "get_parser", "make_config",
    "parse_label", "score_response",
]
