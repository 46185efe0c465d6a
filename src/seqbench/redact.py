"""Keep credentials, and terminal control sequences, out of what seqbench prints and writes.

A source URL may carry a secret: a password (``https://user:secret@host/x.csv``), a token in
the query (``?token=...``, ``?sig=...``) or a presigned S3 URL's ``X-Amz-Signature``. Errors,
manifests and log lines show such a URL with each secret replaced by ``***``.
"""

from __future__ import annotations

import re

MASK = "***"

# Query keys whose values are secrets. Matched anywhere in the key, case-insensitive: showing
# a harmless value as *** costs nothing, showing a secret costs a leak.
SECRET_KEY = re.compile(r"token|key|secret|sig|password|passwd|pwd|auth|credential|session|^x-amz-|^x-goog-", re.I)
# A URL inside free text (a log line, an exception's message): a scheme, ://, then no blanks,
# not ending in the punctuation of the sentence around it.
URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\]]*[^\s'\"<>()\[\].,;:!?]")
# Control characters but tab and newline (C0, DEL, C1): an ESC in a column name could set the
# terminal's title, clear the screen or hide text; a CR could overwrite a line.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def redact_url(url: str) -> str:
    """`url` with its userinfo password (or a lone user name, often a token) and secret-looking
    query values replaced by ***; anything that is not a URL comes back unchanged."""
    from urllib.parse import parse_qsl, quote, urlencode, urlsplit

    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    netloc, query = parts.netloc, parts.query
    if "@" in netloc:
        host = netloc.rpartition("@")[2]
        # user:password keeps the user's name; a name alone (https://TOKEN@host) may be the secret.
        user = f"{parts.username}:" if parts.password is not None and parts.username else ""
        netloc = f"{user}{MASK}@{host}"
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(SECRET_KEY.search(key) for key, _ in pairs):
            pairs = [(key, MASK if SECRET_KEY.search(key) else value) for key, value in pairs]
            query = urlencode(pairs, safe="*/:,", quote_via=quote)
    return parts._replace(netloc=netloc, query=query).geturl()


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted (for log lines and messages from other libraries)."""
    return URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)


def escape_controls(text: str) -> str:
    """`text` with each control character but tab and newline written out (ESC as \\x1b)."""
    return CONTROL.sub(lambda match: f"\\x{ord(match.group(0)):02x}", text)


def shown(text: str) -> str:
    """`text` as it may reach a terminal or a log: credentials masked, control characters
    escaped. Every message and log line seqbench prints goes through here."""
    return escape_controls(redact_text(text))


def redact_source(source: str | dict[str, str]) -> str | dict[str, str]:
    """A dataset's `source` (one source or split -> source) as it may be shown or stored."""
    if isinstance(source, dict):
        return {split: redact_url(one) for split, one in source.items()}
    return redact_url(source)
