"""Replicate runs: named seed streams, never seed + k."""

import pandas as pd
import pytest

from transferlib.config import run_parameters
from transferlib.experiments.replicates import over_seeds, replicate_runs


def test_replicates_of_neighbouring_seeds_share_no_run(tmp_path):
    seeds = {}
    for seed in (0, 1):
        run = run_parameters(seed=seed, device="cpu", cache_dir=str(tmp_path))
        seeds[seed] = [r.seed for r in replicate_runs(run, 4)]
        assert seeds[seed][0] == seed and len(set(seeds[seed])) == 4
    assert not set(seeds[0]) & set(seeds[1])  # seed + k would share 1, 2, 3


def test_over_seeds_stacks_each_replicate_with_its_seed(tmp_path):
    run = run_parameters(seed=5, device="cpu", cache_dir=str(tmp_path))

    def runner(r, preset):
        return pd.DataFrame({"value": [r.seed * 2]})

    table = over_seeds(runner, run, preset=None, n_seeds=3)
    assert list(table["value"]) == [2 * s for s in table["seed"]]
    assert list(table["seed"]) == [r.seed for r in replicate_runs(run, 3)]
    with pytest.raises(ValueError, match="n_seeds"):
        replicate_runs(run, 0)
