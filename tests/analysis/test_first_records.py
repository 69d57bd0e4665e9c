"""stats.first_records: the one record per (variant, item) that the compare output and the HTML items table show."""

from harness.analysis.stats import first_records
from harness.records import Record


def rec(variant, item, repeat, error=None, text="{}"):
    return Record(item_id=item, variant=variant, model="m", model_id="m", request={}, raw_text=text, repeat=repeat,
                  error=error, error_kind="server_error" if error else None, expected={})


def test_first_answered_repeat_wins_over_errors_and_later_repeats():
    records = [rec("a", "1", 2, text="late"), rec("a", "1", 0, error="boom"), rec("a", "1", 1, text="early"),
               rec("a", "2", 1, error="second"), rec("a", "2", 0, error="first"),
               rec("b", "1", 0, text="b0"), rec("b", "1", 0, text="b0 again")]
    first = first_records(records)
    assert set(first) == {("a", "1"), ("a", "2"), ("b", "1")}
    assert first[("a", "1")].raw_text == "early"  # answered beats errored; lowest answered repeat
    assert first[("a", "2")].error == "first"  # every repeat errored: the lowest errored repeat
    assert first[("b", "1")].raw_text == "b0"  # a tie keeps the earliest record
    assert first_records([]) == {}
