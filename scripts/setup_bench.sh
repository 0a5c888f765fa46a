#!/usr/bin/env bash
# A separate environment (.venv-trl) for the TRL side of benchmarks/bench_vs_trl.py.
# TRL cannot share the project's environment: verl 0.9.1 imports
# trl.AutoModelForCausalLMWithValueHead whenever TRL is installed (its transformers monkey
# patch), and TRL 1.x has removed that class, so every verl training run fails to start.
# Same torch and transformers as the project's environment, so both sides run the same kernels.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${BENCH_VENV:-.venv-trl}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
TRANSFORMERS_VERSION=$(.venv/bin/python -c "import transformers; print(transformers.__version__)" 2>/dev/null || echo 5.10.4)

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
printf 'torch==%s\ntransformers==%s\n' "$TORCH_VERSION" "$TRANSFORMERS_VERSION" > "$CONSTRAINTS"
$PIP install -q --upgrade pip
$PIP install -q "torch==${TORCH_VERSION}"
# the reward and data_prep packages are imported from the checkout; they need only these
$PIP install -q -c "$CONSTRAINTS" "trl==1.16.0" "transformers==${TRANSFORMERS_VERSION}" pyyaml pandas pyarrow psutil
"$VENV/bin/python" -c "import trl, torch, transformers; print(f'trl {trl.__version__}, torch {torch.__version__}, transformers {transformers.__version__}')"
echo "TRL environment ready: $VENV"
