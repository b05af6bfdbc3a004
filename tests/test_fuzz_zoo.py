"""A seeded fuzzed zoo of random models (see ``fuzz_zoo.py``): no crash, no NaN/Inf, conservation.

Default run: 24 models in 6 groups of 4 (every registered analyzer checked at least once,
through a rotation of 4 names per model), every bias-free model checked for LRP-0
conservation, and every sixth model exported and compared, eager against the reloaded
SavedModel. ``--runslow`` adds 96 more models.
"""

from __future__ import annotations

import pytest

from fuzz_zoo import Tally, check_case, names_for, random_case

GROUP = 4


def _check_group(seeds, tmp_path):
    tally = Tally()
    for seed in seeds:
        export_dir = str(tmp_path) if seed % 6 == 0 else None
        tally.add(check_case(random_case(seed), names_for(seed), export_dir))
    assert not tally.crashes, tally.crashes
    assert not tally.non_finite, tally.non_finite
    assert not tally.conservation_failures, tally.conservation_failures
    assert not tally.export_mismatches, tally.export_mismatches
    assert tally.models == len(seeds) and tally.analyses == GROUP * len(seeds)
    return tally


@pytest.mark.parametrize("first", range(0, 24, GROUP))
def test_fuzzed_zoo(first, tmp_path):
    _check_group(range(first, first + GROUP), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("first", range(24, 120, GROUP))
def test_fuzzed_zoo_more(first, tmp_path):
    _check_group(range(first, first + GROUP), tmp_path)
