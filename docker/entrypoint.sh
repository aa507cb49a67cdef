#!/bin/sh
# The container's entry point (also runs outside Docker: tests/test_server.py starts it with a temp data dir).
# Checks that the data directory is writable, builds the demo model when it is the chosen model, then replaces
# itself with the app listening on every interface. Settings come from MEDTUNE_* variables; arguments are passed on.
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
DATA_DIR="${MEDTUNE_DATA_DIR:-/data}"
export MEDTUNE_DATA_DIR="$DATA_DIR"

if ! mkdir -p "$DATA_DIR" 2>/dev/null || ! touch "$DATA_DIR/.write-test" 2>/dev/null; then
    echo "medtune: the data directory $DATA_DIR is not writable by user $(id -un) (uid $(id -u))." >&2
    echo "medtune: mount a volume there that this user may write, e.g. 'docker run -v medtune-data:/data ...'," >&2
    echo "medtune: or 'chown -R $(id -u) DIR' on the host directory you mount." >&2
    exit 1
fi
rm -f "$DATA_DIR/.write-test"

# The model: a --model argument wins over MEDTUNE_MODEL, as in app.py.
model="${MEDTUNE_MODEL:-demo}"
previous=""
for arg in "$@"; do
    case "$previous" in --model) model="$arg" ;; esac
    case "$arg" in --model=*) model="${arg#--model=}" ;; esac
    previous="$arg"
done
if [ "$model" = "demo" ]; then
    # Built once into MEDTUNE_HOME (under the data volume in the image), so a restart does not rebuild it.
    "$PYTHON" -c "from finetune.demo_model import demo_model_dir; print('Demo model:', demo_model_dir())"
fi

exec "$PYTHON" app.py --host "${MEDTUNE_HOST:-0.0.0.0}" "$@"
