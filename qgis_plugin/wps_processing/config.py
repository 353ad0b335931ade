"""The provider's settings: shown in Settings → Options → Processing → Providers → WPS,
stored where Processing stores its settings, and read afresh at every use.

WPS_PROCESSING_URLS (comma-separated), when set in the environment, replaces the server
list (headless runs, tests).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from qgis.core import QgsSettings

from .urls import split_urls

ENV_URLS = "WPS_PROCESSING_URLS"
DEFAULT_URL = "http://127.0.0.1:5000/wps"  # what `make run` serves
SETTINGS_PREFIX = "Processing/Configuration/"

SERVERS = "WPS_SERVERS"
REQUEST_TIMEOUT = "WPS_REQUEST_TIMEOUT"
JOB_TIMEOUT = "WPS_JOB_TIMEOUT"
POLL_INTERVAL = "WPS_POLL_INTERVAL"
AUTHCFG = "WPS_AUTHCFG"

# name -> (description in the options dialog, default)
DEFINITIONS: dict[str, tuple[str, object]] = {
    SERVERS: ("WPS servers (URLs, comma-separated)", DEFAULT_URL),
    REQUEST_TIMEOUT: ("Timeout of each HTTP request without data (seconds)", 60),
    JOB_TIMEOUT: ("Longest wait for a job's result (seconds)", 3600),
    POLL_INTERVAL: ("Longest interval between status requests (seconds)", 2.0),
    AUTHCFG: ("Authentication configuration id for the servers (optional)", ""),
}


@dataclass(frozen=True)
class Settings:
    """The settings in effect, with their units."""

    urls: tuple[str, ...]
    request_timeout_s: float
    job_timeout_s: float
    poll_interval_s: float
    authcfg: str


def _value(name: str) -> object:
    return QgsSettings().value(SETTINGS_PREFIX + name, DEFINITIONS[name][1])


def _positive(name: str) -> float:
    try:
        value = float(_value(name))
    except (TypeError, ValueError):
        value = float(DEFINITIONS[name][1])
    return value if value > 0 else float(DEFINITIONS[name][1])


def current() -> Settings:
    """The settings now: the environment's server list if set, else the stored one."""
    urls = os.environ.get(ENV_URLS)
    return Settings(
        urls=split_urls(urls if urls is not None else str(_value(SERVERS))),
        request_timeout_s=_positive(REQUEST_TIMEOUT),
        job_timeout_s=_positive(JOB_TIMEOUT),
        poll_interval_s=_positive(POLL_INTERVAL),
        authcfg=str(_value(AUTHCFG) or "").strip(),
    )


def register(group: str, icon) -> bool:
    """Show the settings in the Processing options (when the Processing plugin runs)."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig, Setting
    except ImportError:
        return False
    ProcessingConfig.settingIcons[group] = icon
    for name, (description, default) in DEFINITIONS.items():
        ProcessingConfig.addSetting(Setting(group, name, description, default))
    ProcessingConfig.readSettings()
    return True


def unregister() -> None:
    """Remove the settings from the Processing options (they stay stored)."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig
    except ImportError:
        return
    for name in DEFINITIONS:
        if name in ProcessingConfig.settings:
            ProcessingConfig.removeSetting(name)
