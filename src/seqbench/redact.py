"""Keep credentials, and terminal control sequences, out of what seqbench prints and writes.

A source URL may carry a secret: a password (``https://user:secret@host/x.csv``), a token as
the user name (``https://TOKEN@host/...``) or in the query (``?token=...``, ``?sig=...``,
a presigned S3 URL's ``X-Amz-Signature``). Manifests, `seqbench datasets`, errors and log lines
show such a URL with each secret replaced by ``***``.

Two layers, both over the source's own parts rather than a pattern over text:

- `redact_url` splits a URL (each link of a chain ``a::b::c``) at its structure: the userinfo is
  everything between ``://`` and the last ``@`` before the host, whatever characters the
  password holds (``(``, ``#``, ``/``, ``?``, ``@``);
- `register_sources` records the secrets of every source params.yaml names (config.py calls it
  when it loads the file), and `shown` masks each of them wherever it appears in a message or a
  log line, however a library quoted the URL.
"""

from __future__ import annotations

import re

MASK = "***"

# Query keys whose values are secrets, matched anywhere in the key, case-insensitive: showing a
# harmless value as *** costs nothing, showing a secret costs a leak. The documented list:
# token, key, secret, sig(nature), password, passwd, pwd, auth, credential, session, jwt, code,
# bearer, access, and every X-Amz-* and X-Goog-* key.
SECRET_KEY = re.compile(
    r"token|key|secret|sig|password|passwd|pwd|auth|credential|session|jwt|code|bearer|access|^x-amz-|^x-goog-",
    re.I,
)
# A URL inside free text (a log line, an exception's message): a scheme, ://, then no blanks or
# quotes, not ending in the punctuation of the sentence around it. Brackets inside are kept (a
# password may hold them); a secret this misses is still masked by `mask_known`.
URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,;:!?)\]]")
# What follows the userinfo's last @: a host (a name, an IPv4 or [IPv6] address, a port), then
# the end or a path, query or fragment.
HOST_THEN_REST = re.compile(r"[A-Za-z0-9._~%-]*(?:\[[0-9A-Fa-f:.]+\])?(?::\d*)?(?=[/?#]|$)")
# The links of an fsspec chain (simplecache::http://...): a :: followed by a protocol, not the ::
# of an IPv6 address ([::1]).
CHAIN = re.compile(r"::(?=[A-Za-z][A-Za-z0-9+.-]*(?:://|::))")
# Control characters but tab and newline (C0, DEL, C1): an ESC in a column name could set the
# terminal's title, clear the screen or hide text; a CR could overwrite a line.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Secrets shorter than this are not masked inside free text: masking every "ab" would garble
# messages more than it protects (they are still masked in URLs, by structure).
MIN_MASKED = 3

_known_secrets: set[str] = set()


def split_url(url: str) -> tuple[str, str | None, str] | None:
    """(scheme://, userinfo or None, the rest from the host on) of one URL, or None when it is
    not one. The userinfo runs to the last @ that a host follows."""
    scheme, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return None
    at = rest.rfind("@")
    while at != -1:
        if HOST_THEN_REST.match(rest, at + 1):
            return scheme + sep, rest[:at], rest[at + 1 :]
        at = rest.rfind("@", 0, at)
    return scheme + sep, None, rest


def url_secrets(url: str) -> list[str]:
    """The secrets of a source string (each link of a chain): the password, or a lone user name,
    and the values of secret query keys; as written and percent-decoded."""
    from urllib.parse import unquote, unquote_plus

    found = []
    for link in CHAIN.split(url):
        parts = split_url(link)
        if parts is None:
            continue
        _, userinfo, rest = parts
        if userinfo:
            user, colon, password = userinfo.partition(":")
            found.append(password if colon else user)
        query = rest.partition("?")[2].partition("#")[0]
        found += [raw.partition("=")[2] for raw in query.split("&") if SECRET_KEY.search(raw.partition("=")[0])]
    # As written, and decoded as a URL's path (%xx) and its query (+ for a space) decode it.
    return [secret for one in found for secret in {one, unquote(one), unquote_plus(one)} if secret]


def redact_url(url: str) -> str:
    """`url` (or each link of a chain) with its password or lone user name and the values of
    secret query keys replaced by ***; anything that is not a URL comes back unchanged."""
    return "::".join(_redact_link(link) for link in CHAIN.split(url))


def _redact_link(link: str) -> str:
    parts = split_url(link)
    if parts is None:
        return link
    scheme, userinfo, rest = parts
    authority = ""
    if userinfo is not None:
        user, colon, _ = userinfo.partition(":")
        # user:password keeps the user's name; a name alone (https://TOKEN@host) may be the secret.
        authority = f"{user}:{MASK}@" if colon and user else f"{MASK}@"
    head, question, query = rest.partition("?")
    query, hash_mark, fragment = query.partition("#")
    if question:
        pairs = [raw.partition("=") for raw in query.split("&")]
        query = "&".join(f"{key}{eq}{MASK if eq and SECRET_KEY.search(key) else value}" for key, eq, value in pairs)
    return f"{scheme}{authority}{head}{question}{query}{hash_mark}{fragment}"


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted (for log lines and messages from other libraries)."""
    return URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)


def register_sources(sources) -> None:
    """Remember the secrets of these source strings: `shown` masks them in any text from now on."""
    for source in sources:
        _known_secrets.update(secret for secret in url_secrets(source) if len(secret) >= MIN_MASKED)


def mask_known(text: str) -> str:
    """`text` with every registered secret replaced by *** (longest first)."""
    for secret in sorted(_known_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def escape_controls(text: str) -> str:
    """`text` with each control character but tab and newline written out (ESC as \\x1b)."""
    return CONTROL.sub(lambda match: f"\\x{ord(match.group(0)):02x}", text)


def shown(text: str) -> str:
    """`text` as it may reach a terminal or a log: credentials masked, control characters
    escaped. Every message and log line seqbench prints goes through here."""
    return escape_controls(mask_known(redact_text(text)))


def redact_source(source: str | dict[str, str]) -> str | dict[str, str]:
    """A dataset's `source` (one source or split -> source) as it may be shown or stored."""
    if isinstance(source, dict):
        return {split: redact_url(one) for split, one in source.items()}
    return redact_url(source)
