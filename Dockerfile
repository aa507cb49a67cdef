# The image a shared demo server runs. CPU by default:
#   docker build -t medtune .
#   docker run -d -p 7860:7860 -v medtune-data:/data -e MEDTUNE_ADMIN_PASSWORD=change-me medtune
# CUDA (PyTorch's CUDA 12.8 build on NVIDIA's runtime image; run with --gpus all):
#   docker build -t medtune:cuda --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#       --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#   docker run -d --gpus all -p 7860:7860 -v medtune-data:/data -e MEDTUNE_ADMIN_PASSWORD=change-me medtune:cuda
# Settings are MEDTUNE_* environment variables (README.md, "Hosting on a shared server"); arguments after the image
# name go to app.py.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# Where torch comes from: PyTorch's CPU wheel index by default (no multi-GB CUDA libraries).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    MEDTUNE_DATA_DIR=/data \
    MEDTUNE_HOME=/data/cache \
    HF_HOME=/data/cache/huggingface \
    MEDTUNE_PORT=7860 \
    PATH=/opt/venv/bin:$PATH

# The CUDA base images have no Python: install the distribution's (3.11 or newer, as pyproject.toml needs).
RUN if ! command -v python3 >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv \
    && pip install --upgrade pip

# torch first, from the chosen index, in its own layer: `pip install .` then finds torch==2.13.0 satisfied.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

WORKDIR /app
COPY . /app
RUN pip install . \
    && useradd --create-home --uid 1000 --shell /usr/sbin/nologin medtune \
    && mkdir -p /data \
    && chown medtune:medtune /data \
    && chmod +x /app/docker/entrypoint.sh

USER medtune
VOLUME /data
EXPOSE 7860
# The first start builds the demo model (about a minute on a CPU), hence the start period.
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('MEDTUNE_PORT', '7860'), timeout=4)"]
ENTRYPOINT ["/app/docker/entrypoint.sh"]
