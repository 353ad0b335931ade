# Edge-filter WPS. Not built on the development machines (no Docker engine there); it
# mirrors `make run`: the same requirements, sample data script, gunicorn.conf.py, nginx
# front (deploy/nginx.conf.in) and retention cleanup, all run by `python -m wps_app.ops.serve`.
FROM debian:bookworm-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv curl ca-certificates \
      cgi-mapserver mapserver-bin lighttpd nginx haproxy libjs-leaflet \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --system --create-home --home-dir /home/wps wps
WORKDIR /app
COPY requirements.txt .
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt
ENV PATH=/opt/venv/bin:$PATH \
    PYWPS_CFG=/etc/wps/pywps.cfg \
    GDAL_HTTP_NETRC=NO

COPY . .
RUN python data/make_sample.py && mkdir -p /app/var /etc/wps \
 && cp pywps.cfg /etc/wps/pywps.cfg && chown -R wps /app/var
USER wps

EXPOSE 5000
# Liveness through the front: the WPS answers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:5000/health || exit 1

# Mount your own configuration at /etc/wps/pywps.cfg (see README, "Configuration").
# nginx listens on 5000 and forwards to gunicorn on loopback; on SIGTERM gunicorn drains
# (/health 503, in-flight requests answered: up to [jobs] sync_max_runtime + 15 s, see the
# README's Operations) and then nginx stops: `docker stop -t 300` (compose:
# stop_grace_period) rather than the default 10 s.
CMD ["python", "-m", "wps_app.ops.serve", "--listen", "0.0.0.0:5000", \
     "--app", "127.0.0.1:5001", "--rundir", "/app/var/front"]
