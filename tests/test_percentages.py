"""``whole_percentages``: shares of one whole shown as whole percentages that add up to exactly 100 (largest
remainder), where each rounded on its own read 99 % or 101 % in total."""

from __future__ import annotations

import math

import pytest

from dramapic.result import whole_percentages


@pytest.mark.parametrize("shares, expected", [
    # thirds and a zero: each rounded on its own 33 + 33 + 33 + 0 = 99; the largest remainder (noise's) takes the 1
    ({"voice": 0.3333, "song": 0.3333, "noise": 0.3334, "silence": 0.0},
     {"voice": 33, "song": 33, "noise": 34, "silence": 0}),
    # 100 * 0.425 is 42.49999999999999 and 100 * 0.575 57.49999999999999: rounded apart 42 + 57 = 99
    ({"female": 0.425, "male": 0.575}, {"female": 42, "male": 58}),
    # 45.5 and 54.5 rounded apart (float noise, then half to even) 46 + 55 = 101
    ({"female": 0.455, "male": 0.545}, {"female": 45, "male": 55}),
    # already whole: unchanged
    ({"voice": 0.6, "song": 0.2, "noise": 0.0, "silence": 0.2}, {"voice": 60, "song": 20, "noise": 0, "silence": 20}),
    # 100 * 0.29 is 28.999999999999996: its whole part is 29, not 28 plus a remainder of float noise
    ({"a": 0.29, "b": 0.71}, {"a": 29, "b": 71}),
])
def test_shares_of_one_whole_add_up_to_100(shares, expected):
    got = whole_percentages(shares=shares)
    assert got == expected and sum(got.values()) == 100
    assert list(got) == list(shares)  # the mapping's keys, in its order


def test_a_share_of_one_is_100_and_the_others_0():
    assert whole_percentages(shares={"voice": 0.0, "song": 1.0, "noise": 0.0, "silence": 0.0}) == {
        "voice": 0, "song": 100, "noise": 0, "silence": 0}
    assert whole_percentages(shares={"female": 1.0, "male": 0.0}) == {"female": 100, "male": 0}


def test_ties_go_to_the_larger_share_then_to_the_earlier_key():
    # 12.5 and 87.5: the larger share takes the missing point, whichever comes first
    assert whole_percentages(shares={"female": 0.125, "male": 0.875}) == {"female": 12, "male": 88}
    assert whole_percentages(shares={"male": 0.875, "female": 0.125}) == {"male": 88, "female": 12}
    # equal shares: the earlier in the mapping takes it, so the same shares always read the same
    assert whole_percentages(shares={"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}) == {"a": 34, "b": 33, "c": 33}
    assert whole_percentages(shares={"c": 1 / 3, "a": 1 / 3, "b": 1 / 3}) == {"c": 34, "a": 33, "b": 33}
    # a zero share never takes a point, whatever its place
    assert whole_percentages(shares={"z": 0.0, "a": 1 / 3, "b": 1 / 3, "c": 1 / 3}) == {"z": 0, "a": 34, "b": 33,
                                                                                         "c": 33}


def test_shares_as_the_json_keeps_them_still_add_up():
    # each share kept to 4 places: 1/7 ... 6/7 of a whole read back sum to 0.9999 or so, still one whole
    shares = {f"s{i}": round(1 / 7, 4) for i in range(7)}
    assert abs(sum(shares.values()) - 1) > 1e-4
    got = whole_percentages(shares=shares)
    assert sum(got.values()) == 100 and sorted(got.values()) == [14] * 5 + [15] * 2


def test_a_set_that_is_not_one_whole_is_rounded_value_by_value():
    # all zero (the gender shares when no voice has a known gender): nothing to make add up
    assert whole_percentages(shares={"female": 0.0, "male": 0.0}) == {"female": 0, "male": 0}
    assert whole_percentages(shares={}) == {}
    # half a whole: rounded as before (half to even), not inflated to 100
    assert whole_percentages(shares={"a": 0.25, "b": 0.25}) == {"a": 25, "b": 25}
    assert whole_percentages(shares={"a": 0.125, "b": 0.2}) == {"a": 12, "b": 20}
    # a negative value (a hand-edited JSON) is no share: shown as it is, no point moved for it
    assert whole_percentages(shares={"a": 1.2, "b": -0.2}) == {"a": 120, "b": -20}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_value_with_no_percentage_is_a_value_error(bad):
    with pytest.raises(ValueError, match="not a share"):
        whole_percentages(shares={"voice": 0.5, "song": bad})


def test_it_takes_keywords_only():
    with pytest.raises(TypeError):
        whole_percentages({"a": 1.0})  # type: ignore[misc]
