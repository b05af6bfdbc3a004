"""The TF Serving REST client helpers, on the JSON layouts TF Serving documents.

The examples are those of TF Serving's REST API page (``api_rest.md``); the
end-to-end test serves a real exported explainer through a small local HTTP
server that follows the same documented layouts (TF Serving itself is not
installable here).
"""

from __future__ import annotations

import http.server
import json
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai.export import export_analyzer
from tfxai.serving import ServingError, make_request, parse_response, predict

L = keras.layers

# --------------------------------------------------------------------------- requests


def test_single_input_rows_are_the_samples():
    # "List of 2 tensors each of [1, 2] shape"
    assert make_request(np.array([[[1, 2]], [[3, 4]]])) == {"instances": [[[1, 2]], [[3, 4]]]}
    # "List of 3 scalar tensors"
    assert make_request(np.array(["foo", "bar", "baz"])) == {"instances": ["foo", "bar", "baz"]}
    # the half_plus_three example request, byte for byte
    assert json.dumps(make_request(np.array([1.0, 2.0, 5.0]))) == '{"instances": [1.0, 2.0, 5.0]}'


_NAMED = {
    "tag": np.array(["foo", "bar"]),
    "signal": np.array([[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]]),
    "sensor": np.array([[[1, 2], [3, 4]], [[4, 5], [6, 8]]]),
}


def test_named_inputs_in_row_format_are_one_object_per_sample():
    assert make_request(_NAMED) == {
        "instances": [
            {"tag": "foo", "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]},
            {"tag": "bar", "signal": [3, 4, 1, 2, 5], "sensor": [[4, 5], [6, 8]]},
        ]
    }


def test_named_inputs_in_columnar_format_are_one_batch_per_name():
    assert make_request(_NAMED, columnar=True) == {
        "inputs": {
            "tag": ["foo", "bar"],
            "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],
            "sensor": [[[1, 2], [3, 4]], [[4, 5], [6, 8]]],
        }
    }
    assert make_request(np.array([1.0, 2.0]), columnar=True, signature_name="explain") == {
        "signature_name": "explain",
        "inputs": [1.0, 2.0],
    }


def test_request_errors_say_what_to_do():
    with pytest.raises(ValueError, match="columnar=True"):
        make_request({"x": np.zeros((2, 3)), "target": np.zeros(3, int)})
    body = make_request({"x": np.zeros((2, 1)), "target": np.zeros(3, int)}, columnar=True)
    assert body["inputs"]["target"] == [0, 0, 0]
    with pytest.raises(ValueError, match="batch axis"):
        make_request(np.float32(1.0))
    with pytest.raises(TypeError, match="numbers"):
        make_request(np.array([object()]))


# --------------------------------------------------------------------------- responses


def test_documented_responses_become_arrays():
    np.testing.assert_array_equal(parse_response('{"predictions": [3.5, 4.0, 5.5]}'), [3.5, 4.0, 5.5])
    rows = [{"relevance": [0.5, -1.0], "explained": 2.0}, {"relevance": [1.5, 0.0], "explained": 1.0}]
    rows = parse_response({"predictions": rows})
    np.testing.assert_array_equal(rows["relevance"], [[0.5, -1.0], [1.5, 0.0]])
    np.testing.assert_array_equal(rows["explained"], [2.0, 1.0])
    columns = parse_response(b'{"outputs": {"relevance": [[0.5, -1.0]], "explained": [2.0]}}')
    assert columns["relevance"].shape == (1, 2) and columns["explained"].shape == (1,)
    np.testing.assert_array_equal(parse_response({"outputs": [[1, 2], [3, 4]]}), [[1, 2], [3, 4]])


def test_non_finite_tokens_are_read():
    values = parse_response('{"outputs": [NaN, Infinity, -Infinity, 1.5]}')
    assert np.isnan(values[0]) and values[1] == np.inf and values[2] == -np.inf and values[3] == 1.5


def test_error_responses_raise_with_the_servers_message():
    with pytest.raises(ServingError, match=r"Servable not found for request: Latest\(half\)"):
        parse_response('{ "error": "Servable not found for request: Latest(half)" }')
    with pytest.raises(ServingError, match="'predictions' or 'outputs'"):
        parse_response({"results": [3.5, 4.0]})


def test_float32_values_survive_the_json_round_trip():
    scales = 10.0 ** np.arange(-20, 20, 8)[:, None]  # five decades of magnitude, one per row
    x = (np.random.default_rng(0).normal(size=(5, 4)) * scales).astype("float32")
    body = json.loads(json.dumps(make_request(x, columnar=True)))
    np.testing.assert_array_equal(parse_response({"outputs": body["inputs"]}).astype("float32"), x)
    # float32 values are written by their shortest text, not by their float64 expansion
    assert json.dumps(make_request(np.float32([0.1, 1e-30, np.nan]))) == '{"instances": [0.1, 1e-30, NaN]}'
    assert make_request({"t": np.array([1], np.int32)}) == {"instances": [{"t": 1}]}


# --------------------------------------------------------------------------- end to end


def _tf_serving_predict(signatures, body):
    """What TF Serving's REST predict does, per its documentation: JSON -> signature -> JSON."""
    signature = signatures[body.get("signature_name", "serving_default")]
    specs = signature.structured_input_signature[1]
    if "instances" in body:
        rows = body["instances"]
        if isinstance(rows[0], dict):
            named = {k: [row[k] for row in rows] for k in specs}
        else:
            named = {next(iter(specs)): rows}
    else:
        named = body["inputs"] if isinstance(body["inputs"], dict) else {next(iter(specs)): body["inputs"]}
    tensors = {k: tf.constant(np.asarray(v, specs[k].dtype.as_numpy_dtype)) for k, v in named.items()}
    outputs = {k: v.numpy().tolist() for k, v in signature(**tensors).items()}
    if "inputs" in body:
        return {"outputs": outputs if len(outputs) > 1 else next(iter(outputs.values()))}
    n = len(next(iter(outputs.values())))
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values()))}
    return {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(n)]}


class _Server:
    """A local HTTP server answering ``POST /v1/models/<name>:predict`` like TF Serving."""

    def __init__(self, name, signatures):
        outer = self
        self.bodies = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                if self.path != f"/v1/models/{name}:predict":
                    status, answer = 404, {"error": f"Servable not found for request: Latest({self.path})"}
                else:
                    status, answer = 200, _tf_serving_predict(signatures, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1/models/{name}:predict"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    keras.utils.set_random_seed(4)
    xa = keras.Input((5,), name="xa")
    xb = keras.Input((3,), name="xb")
    h = L.Concatenate()([L.Dense(4, activation="relu")(xa), xb])
    model = keras.Model([xa, xb], L.Dense(3, activation="softmax")(h), name="two_inputs")
    analyzer = tfxai.create_analyzer("lrp.epsilon", model, epsilon=0.01)
    path = export_analyzer(analyzer, tmp_path_factory.mktemp("served") / "1")
    signatures = tf.saved_model.load(str(path)).signatures
    with _Server("classifier_xai", signatures) as server:
        yield analyzer, server


@pytest.mark.parametrize("columnar", [False, True])
def test_predict_round_trip_equals_analyze(served, columnar):
    analyzer, server = served
    rng = np.random.default_rng(1)
    x = {"xa": rng.normal(size=(4, 5)).astype("float32"), "xb": rng.normal(size=(4, 3)).astype("float32")}
    out = predict(server.url, x, columnar=columnar)
    assert sorted(out) == ["explained", "predictions", "relevance_xa", "relevance_xb"]
    want = analyzer.analyze(x)
    np.testing.assert_allclose(out["relevance_xa"], want["xa"], atol=1e-6)
    np.testing.assert_allclose(out["relevance_xb"], want["xb"], atol=1e-6)
    np.testing.assert_allclose(out["predictions"], analyzer.model([x["xa"], x["xb"]]), atol=1e-6)

    target = np.array([0, 2, 1, 1], np.int32)
    out = predict(server.url, {**x, "target": target}, signature_name="explain_target", columnar=columnar)
    want = analyzer.analyze(x, neuron_selection=target)
    np.testing.assert_allclose(out["relevance_xa"], want["xa"], atol=1e-6)
    assert ("inputs" in server.bodies[-1]) == columnar


def test_predict_raises_the_servers_error(served):
    _, server = served
    with pytest.raises(ServingError, match="HTTP 404: Servable not found"):
        x = {"xa": np.zeros((1, 5)), "xb": np.zeros((1, 3))}
        predict(server.url.replace("classifier_xai", "missing"), x)
