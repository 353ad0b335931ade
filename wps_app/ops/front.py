"""The nginx front (deploy/nginx.conf.in): render its configuration, start and stop it.

Used by `python -m wps_app.ops.serve` (make run, the container) and by the tests, so all
of them run the same configuration file.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from wps_app.ops.processes import stop_group

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf.in"
TEMP_FOLDERS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class FrontOptions:
    """Where the front listens, what it forwards to, and its client limits."""

    listen: str  # "127.0.0.1:5000"
    upstream: str  # gunicorn's "127.0.0.1:5001"
    rundir: Path
    client_timeout_s: int = 20
    upstream_timeout_s: int = 320
    max_body: str = "2m"
    prefix: str = ""
    # Addresses (or networks) of the load balancers before this front, e.g. HAProxy's
    # ("127.0.0.1",): from those peers only, the client is the right-most X-Forwarded-For
    # address, the one the balancer appended (nginx real_ip, not recursive: a client that
    # shares a balancer's address cannot step further back into what it sent itself).
    # Empty: the peer is the client and a client's own X-Forwarded-For is ignored.
    trusted_balancers: tuple[str, ...] = ()


def real_ip_block(trusted: tuple[str, ...]) -> str:
    """nginx's real_ip directives for `trusted` (validated as IP addresses or networks;
    empty: none, so the peer stays the client)."""
    if not trusted:
        return "# no trusted balancer: the peer is the client (its X-Forwarded-For ignored)"
    lines = [f"set_real_ip_from {ipaddress.ip_network(item.strip(), strict=False)};"
             for item in trusted]
    return "\n        ".join(lines + ["real_ip_header X-Forwarded-For;",
                                     "real_ip_recursive off;"])


def render(options: FrontOptions) -> str:
    """The nginx configuration for `options` (values are ours, never a client's)."""
    values = {
        "@RUNDIR@": str(options.rundir), "@LISTEN@": options.listen,
        "@UPSTREAM@": options.upstream, "@CLIENT_TIMEOUT_S@": str(options.client_timeout_s),
        "@UPSTREAM_TIMEOUT_S@": str(options.upstream_timeout_s),
        "@MAX_BODY@": options.max_body, "@PREFIX@": options.prefix,
    }
    text = TEMPLATE.read_text()
    for key, value in values.items():
        if any(c in value for c in ';{}"\n'):
            raise ValueError(f"{key} may not hold {value!r}")
        text = text.replace(key, value)
    return text.replace("@REAL_IP@", real_ip_block(options.trusted_balancers))


def start(options: FrontOptions) -> subprocess.Popen:
    """Write the configuration into options.rundir and start nginx in its own session
    (it answers once its socket is bound; callers probe it)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(nginx, os.X_OK):
        raise RuntimeError("nginx not found: install Debian's nginx package")
    options.rundir.mkdir(parents=True, exist_ok=True)
    for folder in TEMP_FOLDERS:
        # nginx's workers drop to 'nobody' when started as root
        (options.rundir / folder).mkdir(exist_ok=True)
        os.chmod(options.rundir / folder, 0o777)
    config = options.rundir / "nginx.conf"
    config.write_text(render(options))
    return subprocess.Popen(
        [nginx, "-c", str(config), "-p", str(options.rundir)],
        stdout=subprocess.DEVNULL, stderr=open(options.rundir / "stderr.log", "ab"),
        start_new_session=True,
    )


def stop(process: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Stop nginx (master and workers share its process group)."""
    stop_group(process, timeout_s)
