# The tracker's image: `tracker web` by default; compose.yaml also runs `tracker worker` from it.
# glibc (slim), not Alpine: iptocc and psycopg2-binary ship manylinux wheels, no musl ones.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TRACKER_INSTANCE_PATH=/app/instance \
    TRACKER_GEOIP_DIR=/app/geoip

# pg_dump and pg_restore for `tracker db backup|restore` on PostgreSQL.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md wsgi.py ./
COPY tracker ./tracker
COPY geoip/README.md ./geoip/README.md
# Editable: wsgi.py and instance/ stay beside the package, where `tracker web` looks for them.
RUN pip install -e ".[pg]" && mkdir -p instance

EXPOSE 8000
VOLUME ["/app/instance", "/app/geoip"]
CMD ["tracker", "web", "--host", "0.0.0.0", "--port", "8000"]
