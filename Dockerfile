# The pipeline image used by docker-compose.yml (production-shaped deployment).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY connectors ./connectors
COPY config ./config
RUN pip install --no-cache-dir .
ENTRYPOINT ["pipeline"]
