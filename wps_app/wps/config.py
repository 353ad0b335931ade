"""PyWPS's configuration, built from the values wps_app.settings read (and nowhere else).

PyWPS would read the same files again with a parser of its own: one that interpolates
'%' (so a WMS URL with '%20' in it breaks it) and puts every environment variable into
every section. Instead it gets its hard-coded defaults, then every value of ours as read
once, then the values Settings resolved (absolute paths, the database URL, public URLs).
"""

from __future__ import annotations

import configparser

import pywps.configuration as pywps_config

from wps_app import __version__
from wps_app.settings import Settings

# PyWPS's own capabilities defaults that would describe PyWPS, not this service.
_PLACEHOLDERS = {("metadata:main", "identification_keywords")}


def pywps_configuration(parser: configparser.ConfigParser,
                        settings: Settings) -> configparser.ConfigParser:
    """The configuration PyWPS reads, without interpolation: nothing is expanded twice."""
    pywps_config.load_hardcoded_configuration()
    defaults = pywps_config.CONFIG
    environment = set(defaults.defaults())  # PyWPS puts os.environ into every section
    config = configparser.ConfigParser(interpolation=None)
    for section in defaults.sections():
        config.add_section(section)
        for key in defaults.options(section):
            if key in environment or (section, key) in _PLACEHOLDERS:
                continue
            if section == "metadata:main" and key.startswith(("contact_", "provider_")):
                continue  # PyWPS's "Lastname, Firstname" placeholders; ours or nothing
            config.set(section, key, defaults.get(section, key, raw=True))
    for section in parser.sections():
        if not config.has_section(section):
            config.add_section(section)
        for key, value in parser.items(section):
            config.set(section, key, value)
    resolved = {
        ("server", "url"): settings.server_url,
        ("server", "outputurl"): settings.output_url,
        ("server", "outputpath"): str(settings.output_path),
        ("server", "workdir"): str(settings.work_path),
        ("logging", "database"): settings.database,
        # PyWPS's own processing is only ever used to start local jobs (mode = dask jobs
        # never reach it: pywps_compat hands them to the cluster)
        ("processing", "mode"): "detachprocessing",
    }
    for (section, key), value in resolved.items():
        config.set(section, key, value)
    if not config.has_section("metadata:main"):
        config.add_section("metadata:main")
    # PyWPS splits the keyword lists on "," only: "WPS, PyWPS" would give " PyWPS"
    for key in ("identification_keywords", "identification_keywords_type"):
        if config.has_option("metadata:main", key):
            words = config.get("metadata:main", key).split(",")
            config.set("metadata:main", key, ",".join(w.strip() for w in words if w.strip()))
    abstract = config.get("metadata:main", "identification_abstract", fallback="")
    config.set("metadata:main", "identification_abstract",
               f"{abstract} Service version {__version__}.".strip())
    return config
