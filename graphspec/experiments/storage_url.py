"""A study storage's URL without its secrets: for messages, and for the files a sweep writes.

`sweep --storage` takes an SQLAlchemy URL, which may hold a password in its user part
(`postgresql://user:PW@host/db`, a password that itself holds `@` included) or in its
query (`?password=PW`). :func:`redact` gives the URL with every such secret as `***`;
a URL it cannot read is shown as its scheme alone. :func:`scrub` removes the secrets
from any text (a driver's error message quotes the URL it was given). Nothing here
imports more than the standard library and, for well-formed URLs, SQLAlchemy's URL parser.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode

HIDDEN = "***"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):(.*)$", re.S)
# Query keys that carry a secret (libpq's `password`, `sslpassword`; tokens and keys of other drivers).
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|credential", re.I)


def _split(url: str) -> tuple[str, str, str, str, str] | None:
    """(scheme, user, password, host and path, query) of `scheme://user:password@host/path?query`; the
    user part ends at the last `@` before the query (a password may hold `@`); None if not of that form."""
    m = _SCHEME.match(url)
    if m is None or not m.group(2).startswith("//"):
        return None
    scheme, rest = m.group(1), m.group(2)[2:]
    main, _, query = rest.partition("?")
    if "@" not in main:
        return scheme, "", "", main, query
    userinfo, hostpath = main.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    return scheme, user, password, hostpath, query


def secrets(url: str) -> list[str]:
    """The secret parts of a storage URL, as written and decoded: the password and secret query values.
    For a URL that cannot be read, everything after its scheme."""
    if url.startswith("journal:"):  # a file path (an Optuna journal): nothing secret
        return []
    parts = _split(url)
    if parts is None:
        m = _SCHEME.match(url)
        return [m.group(2)] if m is not None and m.group(2) else [url] if url else []
    _, _, password, _, query = parts
    found = [password] if password else []
    found += [piece for piece in password.split("@") if len(piece) >= 3] if "@" in password else []
    found += [v for k, v in parse_qsl(query, keep_blank_values=True) if _SECRET_KEY.search(k) and v]
    found += [unquote(s) for s in found]
    return sorted({s for s in found if s}, key=len, reverse=True)


def redact(url: str) -> str:
    """The URL with its password and secret query values as `***` (what messages and sweep.json show).

    A well-formed URL is read by SQLAlchemy (`make_url(...).render_as_string(hide_password=True)`); a URL
    whose password holds `@` is split at the last `@`; one that is not `scheme://...` at all shows only its
    scheme (`postgresql:***`), since where its secret is cannot be known."""
    if url.startswith("journal:"):  # a file path (an Optuna journal): nothing secret, and resuming needs it
        return url
    parts = _split(url)
    if parts is None:
        m = _SCHEME.match(url)
        return f"{m.group(1)}:{HIDDEN}" if m is not None else HIDDEN
    scheme, user, password, hostpath, query = parts
    pairs = [(k, HIDDEN if _SECRET_KEY.search(k) else v) for k, v in parse_qsl(query, keep_blank_values=True)]
    clean_query = urlencode(pairs, safe="*/:") if pairs else ""
    if "@" not in password:
        try:
            from sqlalchemy.engine import make_url

            parsed = make_url(url)
            if pairs:
                parsed = parsed.set(query={})
            text = str(parsed.render_as_string(hide_password=True))
            return text + (f"?{clean_query}" if clean_query else "")
        except Exception:  # noqa: BLE001 - not a URL SQLAlchemy reads: redacted by hand below
            pass
    userinfo = f"{user}:{HIDDEN}@" if password else (f"{user}@" if user else "")
    return f"{scheme}://{userinfo}{hostpath}" + (f"?{clean_query}" if clean_query else "")


def problem(url: str) -> str | None:
    """Why a storage URL is refused before any driver sees it (a driver would quote it), or None."""
    if url.startswith("sqlite:"):
        return None
    parts = _split(url)
    if parts is None:
        return "not a URL of the form DIALECT://USER:PASSWORD@HOST/DATABASE"
    if "@" in parts[2]:
        return "its password holds `@`: write it as `%40`"
    return None


def scrub(text: str, url: str) -> str:
    """`text` (an error message) with the URL and each of its secrets replaced."""
    out = text.replace(url, redact(url)) if url else text
    for secret in secrets(url):
        out = out.replace(secret, HIDDEN)
    return out


__all__ = ["HIDDEN", "problem", "redact", "scrub", "secrets"]
