"""Load test of the TF Serving REST client (:mod:`tfxai.serving`) against a local stand-in.

TF Serving itself cannot be installed on these machines (Docker and Google's
apt repository only), so the stand-in is a small HTTP server on 127.0.0.1
that answers TF Serving's documented REST predict API
(``POST /v1/models/<name>:predict``, row and columnar layouts) by running the
exported explainer SavedModel loaded with ``tf.saved_model.load``. It lives
here, in the benchmarks, not in the package.

Clients in ``--clients`` threads send ``--requests`` requests of ``--batch``
samples (bounded also by ``--deadline`` seconds) with
:func:`tfxai.serving.predict`; every answer is compared with ``analyze`` on
the same samples. The script prints requests and explanations per second,
latency percentiles, and the counts of lost (no answer, error) and wrong
(differs from ``analyze`` by more than float32 rounding) responses.

    python benchmarks/serving_load.py --requests 200 --clients 4 --batch 8
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.server
import json
import os
import statistics
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def tf_serving_predict(signatures, body):
    """TF Serving's REST predict, per its documentation: JSON body -> signature -> JSON answer."""
    signature = signatures[body.get("signature_name", "serving_default")]
    specs = signature.structured_input_signature[1]
    if "instances" in body:
        rows = body["instances"]
        named = (
            {k: [row[k] for row in rows] for k in specs}
            if isinstance(rows[0], dict)
            else {next(iter(specs)): rows}
        )
    else:
        named = body["inputs"] if isinstance(body["inputs"], dict) else {next(iter(specs)): body["inputs"]}
    tensors = {k: tf.constant(np.asarray(v, specs[k].dtype.as_numpy_dtype)) for k, v in named.items()}
    outputs = {k: v.numpy().tolist() for k, v in signature(**tensors).items()}
    if "inputs" in body:
        return {"outputs": outputs if len(outputs) > 1 else next(iter(outputs.values()))}
    n = len(next(iter(outputs.values())))
    return {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(n)]}


class StandIn:
    """A threading HTTP server on 127.0.0.1 answering ``/v1/models/<name>:predict`` over a SavedModel."""

    def __init__(self, saved_model_dir, name="explainer"):
        signatures = tf.saved_model.load(str(saved_model_dir)).signatures

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != f"/v1/models/{name}:predict":
                    status, answer = 404, {"error": f"Servable not found for request: Latest({self.path})"}
                else:
                    status, answer = 200, tf_serving_predict(signatures, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1/models/{name}:predict"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def run_load(url, batches, expected, *, clients=4, deadline_s=60.0, timeout_s=30.0):
    """Send each batch once from ``clients`` threads; stop starting requests after ``deadline_s``.

    Returns
    -------
    dict
        ``sent``, ``answered``, ``lost``, ``wrong``, ``skipped`` (not sent before the deadline),
        ``seconds``, ``latencies_ms`` (of answered requests).
    """
    from tfxai import serving  # noqa: PLC0415

    start = time.perf_counter()

    def one(i):
        if time.perf_counter() - start > deadline_s:
            return "skipped", None
        began = time.perf_counter()
        try:
            out = serving.predict(url, batches[i], timeout=timeout_s)
        except (serving.ServingError, OSError):
            return "lost", None
        latency = (time.perf_counter() - began) * 1000
        good = all(
            np.allclose(out[key], want, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(want).max()))
            for key, want in expected[i].items()
        )
        return ("answered" if good else "wrong"), latency

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        outcomes = list(pool.map(one, range(len(batches))))
    counts = {k: sum(o == k for o, _ in outcomes) for k in ("answered", "lost", "wrong", "skipped")}
    return dict(
        counts,
        sent=len(batches) - counts["skipped"],
        seconds=time.perf_counter() - start,
        latencies_ms=[latency for outcome, latency in outcomes if outcome == "answered"],
    )


def summary(result, batch) -> str:
    """One Markdown table row: requests/s, explanations/s, latency p50/p95/max, lost, wrong."""
    lat = sorted(result["latencies_ms"])
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else float("nan")
    rate = result["answered"] / result["seconds"]
    return (
        f"| {result['sent']} | {batch} | {rate:.1f} | {rate * batch:.1f} | {statistics.median(lat):.1f} | "
        f"{p95:.1f} | {max(lat):.1f} | {result['lost']} | {result['wrong']} |"
    )


def main(argv=None):
    import keras  # noqa: PLC0415

    import tfxai  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--deadline", type=float, default=120.0)
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3), name="image"),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    analyzer = tfxai.create_analyzer("lrp.epsilon", model, epsilon=0.1)
    rng = np.random.default_rng(0)
    batches = [rng.uniform(0, 1, (args.batch, 32, 32, 3)).astype(np.float32) for _ in range(args.requests)]
    expected = [{"relevance": analyzer.analyze(x), "predictions": np.asarray(model(x))} for x in batches]
    with tempfile.TemporaryDirectory() as folder:
        path = analyzer.export(os.path.join(folder, "1"))
        with StandIn(path) as server:
            result = run_load(server.url, batches, expected, clients=args.clients, deadline_s=args.deadline)
    print("| requests | batch | requests/s | explanations/s | p50 ms | p95 ms | max ms | lost | wrong |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(summary(result, args.batch))


if __name__ == "__main__":
    main()
