"""Errors a user can act on.

Anything raised as a `SeqbenchError` is printed by the CLI as one line, without a traceback, and
the command exits non-zero. Everything else is a bug in seqbench.
"""


class SeqbenchError(Exception):
    """A problem with the user's input: params, a source, or the data itself."""


class ConfigError(SeqbenchError):
    """params.yaml is missing, malformed or holds a bad value."""


class SourceError(SeqbenchError):
    """A source could not be read: missing, unreachable, empty or unreadable."""


class LimitExceeded(SourceError):
    """A source is larger, longer or slower than a bound of params.yaml's `ingest:` section."""


class SchemaError(SeqbenchError):
    """A source was read, but its columns do not fit the dataset's kind."""


class ValidationFailed(SeqbenchError):
    """Validation found table-level problems or quarantined too many rows."""


def exit_code(action) -> int:
    """Run `action()` for a script's main(): a SeqbenchError becomes one `error: ...` line on
    stderr and exit code 1; success is 0."""
    import sys

    try:
        action()
    except SeqbenchError as exc:
        from seqbench.redact import shown

        print(f"error: {shown(str(exc))}", file=sys.stderr)
        return 1
    return 0
