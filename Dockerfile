# The production image: one image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Our bytecode written once here: with PYTHONDONTWRITEBYTECODE (above) every web process and worker would otherwise
# compile all of our modules again at each start. collectstatic needs settings to load; these throwaway values exist
# only during the build.
RUN python -m compileall -q coordinoter integrations invoices organisations \
 && DJANGO_DEBUG=true python manage.py collectstatic --noinput -v 0 \
 && useradd --system --uid 10001 --home /app coordinoter && chown -R coordinoter /app
USER coordinoter

EXPOSE 8000
CMD ["gunicorn", "coordinoter.wsgi:application", "-c", "gunicorn.conf.py"]
