"""Business references quoted by customers: order codes, invoices, contracts, page URLs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from pipeline.dedup.config import ReferencePattern
from pipeline.envelope import Envelope, Reference

_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=64)
def _compiled(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE if ignore_case else 0)


def normalise_value(kind: str, value: str) -> str:
    """Comparable form: URLs without a trailing slash, other references upper case, no spaces."""
    if kind == "url":
        return value.rstrip("/")
    return _SPACES.sub("", value).upper()


def extract_references(text: str, patterns: Sequence[ReferencePattern]) -> list[Reference]:
    """Every reference in ``text``, in order of kind then appearance, without duplicates.

    A span claimed by an earlier pattern is not read again by a later one (an invoice
    number is not also an order code).
    """
    claimed: list[tuple[int, int]] = []
    found: list[Reference] = []
    seen: set[tuple[str, str]] = set()
    for entry in patterns:
        for match in _compiled(entry.pattern, entry.ignore_case).finditer(text):
            group = 1 if match.re.groups else 0
            start, end = match.span(group)
            if any(start < c_end and c_start < end for c_start, c_end in claimed):
                continue
            claimed.append(match.span())
            value = normalise_value(entry.kind, match.group(group))
            if (entry.kind, value) not in seen:
                seen.add((entry.kind, value))
                found.append(Reference(kind=entry.kind, value=value))
    return found


def envelope_references(envelope: Envelope,
                        patterns: Sequence[ReferencePattern]) -> list[Reference]:
    """References from subject, text and transcripts, plus any a connector already set."""
    refs = list(envelope.refs)
    known = {(r.kind, normalise_value(r.kind, r.value)) for r in refs}
    for ref in extract_references(envelope.full_text(), patterns):
        if (ref.kind, ref.value) not in known:
            known.add((ref.kind, ref.value))
            refs.append(ref)
    return refs


def ref_key(ref: Reference) -> str:
    """``kind:VALUE``, how a case stores the references it has seen."""
    return f"{ref.kind}:{normalise_value(ref.kind, ref.value)}"
