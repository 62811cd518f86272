"""URLs as they may be recorded or shown: without the credentials they can carry."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: ``scheme://userinfo@`` anywhere in a text (what scrub removes)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"<>]*@")


def public_url(url: str) -> str:
    """``url`` as it may be shown and recorded: without the user name and password of its
    authority and without its query (where a token may be).  An ``ssh://`` user name with
    no password (``ssh://git@host/repo``) is kept: it names the account, the key is the
    secret, and it is part of where the repository is."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub(url)
    netloc = parts.netloc
    if "@" not in netloc and not parts.query:
        return url  # as written (urlunsplit would drop the // of an empty authority)
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        keep = parts.scheme.lower() in ("ssh", "git+ssh") and ":" not in userinfo
        netloc = netloc if keep else host
    return parts._replace(netloc=netloc, query="").geturl()


def scrub(text: str) -> str:
    """``text`` (a message of git's, a requirement as written) with the user name and
    password of every ``scheme://user:password@`` in it removed."""
    return _USERINFO.sub(r"\1", text)
