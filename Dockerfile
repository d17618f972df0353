# One image for every lobby process: the kiosk, counter and pager web services and their RQ workers.
# docker-compose.yml picks the process per container through `command`; the default is the kiosk.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Install the project (runtime dependencies only, no [test] extras) from a scratch directory that is
# removed afterwards, so that `services` is imported from site-packages and not from a copy in the cwd.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services/ services/
RUN pip install --no-cache-dir . \
    && rm -rf /src \
    && groupadd --system --gid 10001 lobby \
    && useradd --system --uid 10001 --gid lobby --no-create-home --home-dir /app --shell /usr/sbin/nologin lobby

WORKDIR /app
USER lobby

EXPOSE 5001 5002 5003

# /readyz answers 200 only while Redis is reachable. The slim image has no curl, so Python asks.
# HEALTHCHECK_PORT lets the same check serve the counter (5002) and pager (5003); workers listen on no
# port, so docker-compose.yml disables the check for them.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('HEALTHCHECK_PORT', '5001') + '/readyz', timeout=2)"]

# The same gunicorn invocation as `lobby up` (services/ops/stack.py): its settings, gevent workers and several
# per service, are in services/web/serving.py.
CMD ["python", "-m", "gunicorn", "--config", "python:services.web.serving", "--bind", "0.0.0.0:5001", \
     "services.kiosk.app:create_app()"]
