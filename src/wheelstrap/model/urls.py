"""URLs as they may be recorded or shown: without the credentials they can carry."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def public_url(url: str) -> str:
    """``url`` without the credentials it may carry (``https://u:p@host/`` ->
    ``https://host/``; a token is often given as the user alone, so the user goes too),
    ``git+`` URLs included.  An ssh URL keeps a user without a password
    (``ssh://git@host/``): it is the account to log in as, and ssh keeps its secrets
    elsewhere."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    if parts.scheme in ("ssh", "git+ssh") and ":" not in userinfo:
        return url
    return urlunsplit(parts._replace(netloc=host))
