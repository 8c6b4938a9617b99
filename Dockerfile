# Production image: wheels are built in a throw-away stage so no compiler reaches the final image, and
# only what `opsbot serve` runs goes in: no demo (its sick system), no localslack, no dev dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
RUN rm -rf bot/demo && pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OPSBOT_HOST=0.0.0.0 \
    OPSBOT_PORT=3000 \
    OPSBOT_DATA_DIR=/var/lib/opsbot \
    OPSBOT_LOG_FORMAT=json \
    OPSBOT_RUNBOOKS=/opt/opsbot/runbooks
# A fixed numeric user, so Kubernetes' runAsNonRoot can verify it (deploy/kubernetes runs it as 10001).
RUN groupadd --system --gid 10001 opsbot \
    && useradd --system --uid 10001 --gid opsbot --home-dir /var/lib/opsbot --create-home opsbot
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY runbooks /opt/opsbot/runbooks
USER 10001
WORKDIR /var/lib/opsbot
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/health', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["opsbot"]
CMD ["serve"]
