"""Which records accuracy measures. An eval set may mix items with an `expected` answer and items without one,
scored by agreement with a reference alone (issue 21, point 2): the latter are left out of accuracy, its interval
and its paired tests, and are never counted as unknown scores."""

from __future__ import annotations

from collections.abc import Sequence

from harness.records import Record


def labelled(rec: Record) -> bool:
    """Whether a record measures accuracy: its item has an expected answer, or (a record written without it) its
    answer has a known primary score. An unlabelled item (scored by agreement with a reference only) has no
    primary score (harness.scoring.suite): it is neither in accuracy nor among its unknowns."""
    return rec.expected is not None or (rec.error is None and rec.primary is not None)


def labelled_flags(records: Sequence[Record]) -> list[bool]:
    """Per record, whether accuracy measures it. Only where the records mix items with and without an expected
    answer are some left out (`labelled`): where none carries one (a label-free run, whose accuracy is not
    measured at all; records built without it) every record counts as it always has."""
    if not any(r.expected is not None for r in records):
        return [True] * len(records)
    return [labelled(r) for r in records]
