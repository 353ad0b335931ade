"""Typed, frozen settings read once from pywps.cfg files plus WPS_* environment overrides.

Layering (later wins): the repository's pywps.cfg -> the file named by $PYWPS_CFG ->
environment variables. `WPS_<SECTION>_<KEY>` sets [section] key (WPS_WMS_URL, or
WPS_SERVER_MAXREQUESTSIZE); `WPS_<SECTION>__<NAME>__<KEY>` sets [section:name] key
(WPS_WMS__ORTHO__URL for [wms:ortho], WPS_METADATA__MAIN__PROVIDER_NAME), NAME in
[a-z0-9]; other WPS_* variables (WPS_PORT) are not configuration. Values may name
environment variables as ${VAR}. Relative paths are resolved against the repository root,
never against the current directory.

This is the only reader of the configuration: PyWPS gets the values read here
(wps_app/wps/config.py), so both see the same, interpolated once. The raster core never
reads these settings: the builders limits(), render_options() and wms_source() hand it its
own value objects.
"""

from __future__ import annotations

import configparser
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from wps_app.core.types import Limits, RenderOptions
from wps_app.core.wms import LOSSLESS_FORMATS, WmsSource

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "pywps.cfg"
ENV_PREFIX = "WPS_"


def config_files(extra: list[str | Path] | None = None) -> list[Path]:
    """The configuration files in the order they are read: defaults first."""
    files = [DEFAULT_CONFIG, *(Path(p) for p in extra or [])]
    if os.environ.get("PYWPS_CFG"):
        files.append(Path(os.environ["PYWPS_CFG"]))
    return files


class EnvInterpolation(configparser.Interpolation):
    """`${VAR}` in a value is replaced by the environment variable VAR (left as it is when
    VAR is unset); nothing else is interpolated, so '%' and '$' elsewhere stay literal."""

    _VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

    def before_get(self, parser, section, option, value, defaults):
        return self._VARIABLE.sub(lambda m: os.environ.get(m.group(1), m.group(0)), value)


# WPS_<SECTION>__<NAME>__<KEY> (a named section such as [wms:ortho]) or WPS_<SECTION>_<KEY>
_ENV_NAMED = re.compile(r"^([a-z0-9]+)__([a-z0-9]+)__([a-z0-9_]+)$")
_ENV_PLAIN = re.compile(r"^([a-z0-9]+)_([a-z0-9_]+)$")


def environment_overrides(environ: dict[str, str]) -> list[tuple[str, str, str]]:
    """(section, key, value) for every WPS_* variable, in the order of the environment.

    Section names hold no '_', so the first one ends the section; a double '_' marks a
    named section. A variable of neither form (WPS_PORT, which the Makefile uses) is not
    configuration and is left alone.
    """
    overrides = []
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        named = _ENV_NAMED.match(rest)
        plain = None if named or "__" in rest else _ENV_PLAIN.match(rest)
        if named:
            overrides.append((f"{named.group(1)}:{named.group(2)}", named.group(3), value))
        elif plain:
            overrides.append((plain.group(1), plain.group(2), value))
    return overrides


def read_config(files: list[Path], environ: dict[str, str] | None = None
                ) -> configparser.ConfigParser:
    """Read `files` (missing ones are skipped), then apply the environment's overrides."""
    parser = configparser.ConfigParser(interpolation=EnvInterpolation())
    parser.read([str(f) for f in files], encoding="utf-8")
    for section, key, value in environment_overrides(
            dict(os.environ) if environ is None else environ):
        if not parser.has_section(section):
            parser.add_section(section)
        parser.set(section, key, value)
    return parser


_SIZE_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def parse_size(text: str) -> int:
    """'1mb' -> 1048576 bytes; plain numbers are bytes (PyWPS's notation)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?b?)\s*", text.lower())
    if not match:
        raise ValueError(f"not a size: {text!r}")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def _database_url(value: str) -> str:
    """A SQLAlchemy URL; a relative SQLite file is made absolute under the repository."""
    if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
        relative = value[len("sqlite:///") :]
        if relative != ":memory:":
            return f"sqlite:///{(REPO_ROOT / relative).resolve()}"
    return value


def _path(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


def _http_url(value: str, key: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{key} must be an http(s) URL, got {value!r}")
    return value


def _processing_mode(value: str) -> str:
    """[processing] mode: "local" (jobs run detached on the instance that accepted them;
    PyWPS's name for it, "detachprocessing", is the same) or "dask" (on the Dask cluster
    at [processing] dask_scheduler)."""
    mode = {"detachprocessing": "local"}.get(value.lower(), value.lower())
    if mode not in ("local", "dask"):
        raise ValueError(f"[processing] mode must be local or dask, got {value!r}")
    return mode


def _dask_address(value: str) -> str:
    """A Dask scheduler address: tcp://host:port, or tls://host:port across hosts."""
    if value and not re.fullmatch(r"(tcp|tls)://[A-Za-z0-9.\[\]:-]+:\d{1,5}", value):
        raise ValueError(f"[processing] dask_scheduler must be tcp:// or tls://host:port, "
                         f"got {value!r}")
    return value


_SOURCE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")  # an RFC 9110 token
# set by the HTTP client itself: configuring them would break or smuggle requests
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection",
                               "keep-alive", "upgrade", "te", "trailer", "expect",
                               "proxy-connection"})


def parse_headers(text: str, key: str) -> tuple[tuple[str, str], ...]:
    """`Name: value` lines (blank lines skipped) as (name, value) pairs. Refuses names that
    are not HTTP tokens or that the client sets itself, and values with control
    characters. The error names the line number, never the value (it may be a key)."""
    headers = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not _HEADER_NAME.match(name):
            raise ValueError(f"{key} line {number}: expected 'Name: value'")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"{key} line {number}: {name} is set by the HTTP client")
        if not value or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError(f"{key} line {number}: the value is empty or has control "
                             "characters")
        headers.append((name, value))
    return tuple(headers)


@dataclass(frozen=True)
class WmsServer:
    """A configured WMS source: [wms] is the default one, [wms:NAME] sections add more.

    Sources are trusted configuration: clients only ever pick one by name."""

    name: str = "sample"
    url: str = "http://127.0.0.1:8081/wms"
    version: str = "1.3.0"
    timeout_s: float = 10.0
    retries: int = 2
    block_px: int = 1024
    # [wms] image_format: the GetMap format, "auto" (the cheapest lossless one the WMS's
    # capabilities offer: wms.choose_image_format) or one of wms.LOSSLESS_FORMATS
    image_format: str = "auto"
    # sent with every request to this server and never to another (core.relay)
    headers: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:  # the URL and headers may carry a key
        return f"WmsServer(name={self.name!r}, version={self.version!r})"


def _wms_server(cfg: configparser.ConfigParser, section: str, name: str,
                base: WmsServer) -> WmsServer:
    def get(key: str, default: object) -> str:
        return cfg.get(section, key, fallback=str(default)).strip()

    if not _SOURCE_NAME.match(name):
        raise ValueError(f"[{section}]: a source name is letters, digits, '_' or '-'")
    version = get("version", base.version)
    if version not in ("1.1.1", "1.3.0"):
        raise ValueError(f"[{section}] version must be 1.1.1 or 1.3.0, got {version!r}")
    image_format = get("image_format", base.image_format).lower()
    if image_format != "auto" and image_format not in LOSSLESS_FORMATS:
        raise ValueError(f"[{section}] image_format must be auto or one of "
                         f"{', '.join(LOSSLESS_FORMATS)}, got {image_format!r}")
    return WmsServer(
        name=name,
        url=_http_url(cfg.get(section, "url", fallback=base.url).strip(), f"[{section}] url"),
        version=version,
        timeout_s=float(get("timeout", base.timeout_s)),
        retries=int(get("retries", base.retries)),
        block_px=int(get("block_px", base.block_px)),
        headers=(parse_headers(cfg.get(section, "headers"), f"[{section}] headers")
                 if cfg.has_option(section, "headers") else ()),  # not inherited, as url
        image_format=image_format,
    )


def read_wms_servers(cfg: configparser.ConfigParser) -> tuple[WmsServer, ...]:
    """The default source from [wms], then one per [wms:NAME] section (which inherits the
    [wms] values it does not set, except the URL, which it must set)."""
    default = _wms_server(cfg, "wms", cfg.get("wms", "name", fallback="sample").strip(),
                          WmsServer()) if cfg.has_section("wms") else WmsServer()
    servers = [default]
    for section in cfg.sections():
        if section.startswith("wms:"):
            if not cfg.has_option(section, "url"):
                raise ValueError(f"[{section}] needs a url")
            server = _wms_server(cfg, section, section[4:], default)
            if server.name in {s.name for s in servers}:
                raise ValueError(f"WMS source {server.name!r} is configured twice")
            servers.append(server)
    return tuple(servers)


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from configuration, with units in the names."""

    wms_servers: tuple[WmsServer, ...] = (WmsServer(),)
    wms_probe_s: float = 10.0  # [wms] probe_interval: seconds between capabilities probes
    instance: str = socket.gethostname()  # [server] instance: names this instance
    drain_s: float = 0.0  # [server] drain_s: after SIGTERM, /health says draining this long
    default_size_px: int = 512
    default_side_deg: float = 0.0005
    max_width_px: int = 16384
    max_height_px: int = 16384
    max_pixels: int = 16384 * 16384
    stream_above_px: int = 2048 * 2048
    max_raw_mb: float = 64.0
    max_bbox_deg: float = 0.5
    png_zlevel: int = 1
    geotiff_compress: str = "DEFLATE"
    geotiff_zlevel: int = 1
    output_path: Path = REPO_ROOT / "var" / "outputs"
    output_url: str = "http://127.0.0.1:5000/outputs/"
    work_path: Path = REPO_ROOT / "var" / "tmp"
    server_url: str = "http://127.0.0.1:5000/wps"  # the WPS endpoint's public URL
    max_runtime_s: float = 600.0
    lease_s: float = 30.0
    trusted_proxies: str = ""
    max_output_mb: float = 2048.0
    retention_hours: float = 24.0
    max_request_bytes: int = 1024 * 1024
    parallel_processes: int = 4
    max_queued_processes: int = 16
    sync_max_runtime_s: float = 240.0  # below gunicorn's timeout (gunicorn.conf.py: 300)
    max_per_client: int = 8  # async jobs running + queued per client; 0: no limit
    database: str = f"sqlite:///{REPO_ROOT / 'var' / 'pywps-logs.sqlite'}"
    keys_file: Path | None = None  # [auth] keys_file: API keys required when set
    processing_mode: str = "local"  # [processing] mode: "local" or "dask"
    dask_scheduler: str = ""  # [processing] dask_scheduler: tcp://127.0.0.1:8786
    expose_pid: bool = False  # [server] expose_pid: /health names the gunicorn master
    dask_above_px: int = 4096 * 4096  # [processing] dask_above_px: larger ones on Dask

    @property
    def wms(self) -> WmsServer:
        """The default WMS source."""
        return self.wms_servers[0]

    def wms_server(self, name: str | None) -> WmsServer:
        """The source called `name` (the default for None); KeyError if not configured."""
        if name is None:
            return self.wms
        for server in self.wms_servers:
            if server.name == name:
                return server
        raise KeyError(name)

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Configured values that must never be written anywhere (the WMS headers' values,
        keys as a rule), for the logs' masking."""
        return tuple(value for server in self.wms_servers for _, value in server.headers)

    @property
    def source_names(self) -> tuple[str, ...]:
        """The configured WMS sources' names, the default one first."""
        return tuple(server.name for server in self.wms_servers)

    def wms_source(self, name: str | None = None) -> WmsSource:
        """The core's view of the source called `name` (the default for None); KeyError if
        not configured."""
        server = self.wms_server(name)
        return WmsSource(server.url, server.version, server.timeout_s, server.retries,
                         max_block_px=server.block_px, headers=server.headers,
                         **({} if server.image_format == "auto"
                            else {"image_format": server.image_format}))

    def limits(self) -> Limits:
        """What a request may ask for (pixels, EPSG:4326 degrees), for build_request."""
        return Limits(
            default_size_px=self.default_size_px,
            default_side_deg=self.default_side_deg,
            max_width_px=self.max_width_px,
            max_height_px=self.max_height_px,
            max_pixels=self.max_pixels,
            max_bbox_deg=self.max_bbox_deg,
        )

    def render_options(self) -> RenderOptions:
        """How the pipeline writes: codecs, levels and the one-window size limit."""
        return RenderOptions(
            geotiff_compress=self.geotiff_compress,  # type: ignore[arg-type]
            geotiff_level=self.geotiff_zlevel,
            png_zlevel=self.png_zlevel,
            stream_above_px=self.stream_above_px,
        )

    @classmethod
    def from_parser(cls, cfg: configparser.ConfigParser) -> Settings:
        """Build settings from a parsed configuration; missing keys keep their defaults."""
        d = cls()

        def get(section: str, key: str, default: object) -> str:
            return cfg.get(section, key, fallback=str(default)).strip()

        compress = get("output", "geotiff_compress", d.geotiff_compress).upper()
        if compress not in ("DEFLATE", "ZSTD", "LZW"):
            raise ValueError("[output] geotiff_compress must be DEFLATE, ZSTD or LZW")
        mode = _processing_mode(get("processing", "mode", d.processing_mode))
        scheduler = _dask_address(get("processing", "dask_scheduler", d.dask_scheduler))
        if mode == "dask" and not scheduler:
            raise ValueError("[processing] mode = dask needs [processing] dask_scheduler")
        return cls(
            processing_mode=mode,
            dask_scheduler=scheduler,
            expose_pid=cfg.getboolean("server", "expose_pid", fallback=d.expose_pid),
            wms_servers=read_wms_servers(cfg),
            wms_probe_s=float(get("wms", "probe_interval", d.wms_probe_s)),
            instance=get("server", "instance", d.instance),
            drain_s=float(get("server", "drain_s", d.drain_s)),
            default_size_px=int(get("limits", "default_size", d.default_size_px)),
            default_side_deg=float(get("limits", "default_side_deg", d.default_side_deg)),
            max_width_px=int(get("limits", "max_width", d.max_width_px)),
            max_height_px=int(get("limits", "max_height", d.max_height_px)),
            max_pixels=int(get("limits", "max_pixels", d.max_pixels)),
            stream_above_px=int(get("limits", "stream_above_px", d.stream_above_px)),
            max_raw_mb=float(get("limits", "max_raw_mb", d.max_raw_mb)),
            max_bbox_deg=float(get("limits", "max_bbox_deg", d.max_bbox_deg)),
            png_zlevel=int(get("output", "png_zlevel", d.png_zlevel)),
            geotiff_compress=compress,
            geotiff_zlevel=int(get("output", "geotiff_zlevel", d.geotiff_zlevel)),
            output_path=_path(get("server", "outputpath", d.output_path)),
            output_url=get("server", "outputurl", d.output_url),
            work_path=_path(get("server", "workdir", d.work_path)),
            server_url=get("server", "url", d.server_url),
            max_runtime_s=float(get("jobs", "max_runtime", d.max_runtime_s)),
            lease_s=float(get("jobs", "lease_s", d.lease_s)),
            trusted_proxies=get("server", "trusted_proxies", d.trusted_proxies),
            max_output_mb=float(get("limits", "max_output_mb", d.max_output_mb)),
            retention_hours=float(get("output", "retention_hours", d.retention_hours)),
            max_request_bytes=parse_size(get("server", "maxrequestsize", "1mb")),
            parallel_processes=int(get("server", "parallelprocesses", d.parallel_processes)),
            max_queued_processes=int(get("server", "maxprocesses", d.max_queued_processes)),
            sync_max_runtime_s=float(get("jobs", "sync_max_runtime", d.sync_max_runtime_s)),
            max_per_client=int(get("jobs", "max_per_client", d.max_per_client)),
            database=_database_url(get("logging", "database", d.database)),
            keys_file=_path(get("auth", "keys_file", "")) if get("auth", "keys_file", "")
            else None,
            dask_above_px=int(get("processing", "dask_above_px", d.dask_above_px)),
        )


def load_settings(files: list[Path] | None = None) -> Settings:
    """Read settings from `files` (default: config_files()) and the environment."""
    return Settings.from_parser(read_config(files if files is not None else config_files()))
