# SoLoMo application image: the API, the Celery worker and Celery beat run from it (see compose.yaml).
# MongoDB and Redis are separate containers; the embedded-server wheels are not installed here.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PROMETHEUS_MULTIPROC_DIR=/run/prometheus

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY solomo/__init__.py solomo/__init__.py
RUN pip install --upgrade pip && pip install .  && pip uninstall -y solomo

COPY solomo solomo
COPY checkins checkins
COPY feed feed
COPY geo geo
COPY offers offers
COPY moderation moderation
COPY workers workers
COPY push push
COPY search search
COPY media media
COPY notifications notifications
COPY profiles profiles
COPY loyalty loyalty
COPY insights insights
# The hot modules compiled with mypyc (solomo/core/compiled.py), in place, before the install
# copies them with their sources; the compiler and mypy are there for the build only.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install "mypy>=2.4,<3" \
    && python -c "import sys; from solomo.core.compiled import build, state; sys.exit(build() or state() != 'compiled')" \
    && pip uninstall -y mypy && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/* build
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /app solomo \
    && mkdir -p "$PROMETHEUS_MULTIPROC_DIR" \
    && chown solomo "$PROMETHEUS_MULTIPROC_DIR"

USER solomo
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]

# The API. compose.yaml runs the worker and beat from the same image with their own commands.
CMD ["uvicorn", "solomo.asgi:app", "--host", "0.0.0.0", "--port", "8000", "--http", "httptools", "--loop", "uvloop", "--ws", "websockets-sansio", "--ws-max-size", "65536", "--no-access-log"]
