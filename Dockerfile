# Production image: gunicorn serving Django, also used for the Celery worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=fitplatform.settings.base

RUN apt-get update && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 fit

WORKDIR /app
COPY pyproject.toml README.md ./
RUN pip install --upgrade pip && pip install .
COPY . .
# Static files are collected at build time (served by WhiteNoise from the image).
# /app/media exists owned by fit so that the named media volume (shared by web and
# worker) starts out writable by the app user.
RUN DJANGO_SECRET_KEY=build-only DJANGO_DEBUG=false python manage.py collectstatic --noinput \
    && mkdir -p /app/media/imports /app/media/exports \
    && chown -R fit:fit /app
USER fit
EXPOSE 8000
CMD ["gunicorn", "fitplatform.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
