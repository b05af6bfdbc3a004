"""A bounded load test of the REST client against the local TF Serving stand-in of ``benchmarks/serving_load.py``."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

import tfxai

_SPEC = importlib.util.spec_from_file_location(
    "serving_load", pathlib.Path(__file__).parents[1] / "benchmarks" / "serving_load.py"
)
serving_load = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(serving_load)

REQUESTS, BATCH = 48, 4


@pytest.fixture(scope="module")
def server(zoo, tmp_path_factory):
    analyzer = tfxai.create_analyzer("lrp.epsilon", zoo("cnn", True), epsilon=0.1)
    with serving_load.StandIn(analyzer.export(tmp_path_factory.mktemp("load") / "1")) as stand_in:
        yield analyzer, stand_in


@pytest.mark.slow
def test_concurrent_requests_all_come_back_equal_to_analyze(server, make_x):
    analyzer, stand_in = server
    batches = [make_x(analyzer.model, BATCH, seed=i) for i in range(REQUESTS)]
    expected = [
        {"relevance": analyzer.analyze(x), "predictions": np.asarray(analyzer.model(x))} for x in batches
    ]
    result = serving_load.run_load(
        stand_in.url, batches, expected, clients=4, deadline_s=60.0, timeout_s=20.0
    )
    assert (result["answered"], result["lost"], result["wrong"], result["skipped"]) == (REQUESTS, 0, 0, 0)
    assert len(result["latencies_ms"]) == REQUESTS


def test_a_wrong_or_lost_answer_is_counted(server, make_x):
    analyzer, stand_in = server
    x = make_x(analyzer.model, BATCH)
    wrong = {"relevance": analyzer.analyze(x) + 1e-3}
    result = serving_load.run_load(stand_in.url, [x], [wrong], clients=1)
    assert (result["answered"], result["wrong"]) == (0, 1)
    missing = stand_in.url.replace("explainer", "missing")
    result = serving_load.run_load(missing, [x], [wrong], clients=1)
    assert (result["answered"], result["lost"]) == (0, 1)
