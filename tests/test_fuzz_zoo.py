"""A seeded fuzzed zoo of random models (see ``fuzz_zoo.py``): no crash, no NaN/Inf, conservation.

Default run: 24 models in 6 groups of 4 (every registered analyzer checked at least once,
through a rotation of 4 names per model), every bias-free model checked for LRP-0
conservation, and one model in six (seeds 0 and 3 mod 12, half of them mixed precision)
exported and compared, eager against the reloaded SavedModel. 96 more models are marked
``slow`` (``pytest -m "not slow"`` leaves them out). ``pytest -s`` prints the counts per group.
"""

from __future__ import annotations

import pytest

from fuzz_zoo import Tally, check_case, names_for, random_case

GROUP = 4


def _check_group(seeds, tmp_path):
    tally, mixed = Tally(), 0
    for seed in seeds:
        export_dir = str(tmp_path) if seed % 12 in (0, 3) else None  # 3 mod 12: mixed precision
        case = random_case(seed)
        mixed += case.mixed
        tally.add(check_case(case, names_for(seed), export_dir))
    print(f"\nzoo seeds {seeds[0]}-{seeds[-1]}: {mixed} mixed_float16; {tally.counts()}")  # counts: pytest -s
    assert not tally.crashes, tally.crashes
    assert not tally.non_finite, tally.non_finite
    assert not tally.conservation_failures, tally.conservation_failures
    assert not tally.export_mismatches, tally.export_mismatches
    assert tally.models == len(seeds) and tally.analyses == GROUP * len(seeds)
    return tally


@pytest.mark.parametrize("first", range(0, 24, GROUP))
@pytest.mark.slow
def test_fuzzed_zoo(first, tmp_path):
    _check_group(range(first, first + GROUP), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("first", range(24, 120, GROUP))
def test_fuzzed_zoo_more(first, tmp_path):
    _check_group(range(first, first + GROUP), tmp_path)
