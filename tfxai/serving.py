"""Client helpers for explanations served by TensorFlow Serving's REST API.

TF Serving's ``predict`` endpoint (``POST /v1/models/<name>:predict``) takes
a JSON body in one of two layouts:

row format
    ``{"signature_name": ..., "instances": [...]}``: one entry per sample;
    with one input each entry is the sample itself, with several inputs an
    object ``{input name: value}``. The response is ``{"predictions": [...]}``:
    one entry per sample, an object ``{output name: value}`` when the
    signature has several outputs.
columnar format
    ``{"signature_name": ..., "inputs": ...}``: the whole batch, or an object
    ``{input name: batch}``. The response is ``{"outputs": ...}``, an object
    ``{output name: batch}`` when the signature has several outputs.

Errors come back as ``{"error": message}``. Floats may be ``NaN``,
``Infinity`` and ``-Infinity`` (Python's ``json`` reads and writes them).

This module only needs NumPy and the standard library.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np

from tfxai.errors import InputError, ParameterTypeError, TfxaiError


class ServingError(TfxaiError, RuntimeError):
    """TF Serving answered with an error, or with something that is not a predict response."""


def make_request(inputs, *, signature_name: str | None = None, columnar: bool = False) -> dict:
    """Build the JSON body of a TF Serving ``predict`` request from NumPy arrays.

    Parameters
    ----------
    inputs : array-like or dict of array-like
        One batch (batch axis first) for a signature with one input, or
        ``{input name: batch}``, e.g. ``{"image": x, "target": classes}`` for
        an ``explain_target`` signature.
    signature_name : str, optional
        The signature to run; TF Serving uses ``serving_default`` without one.
    columnar : bool
        Use the columnar ``"inputs"`` layout instead of the row ``"instances"``
        layout (needed when inputs differ in batch size).

    Returns
    -------
    dict
        The request body; ``json.dumps`` it for the HTTP request.

    Examples
    --------
    >>> make_request(np.array([[1.0, 2.0], [3.0, 4.0]]))
    {'instances': [[1.0, 2.0], [3.0, 4.0]]}
    >>> make_request({"x": np.array([[1.0, 2.0]]), "target": np.array([1])}, signature_name="explain_target")
    {'signature_name': 'explain_target', 'instances': [{'x': [1.0, 2.0], 'target': 1}]}
    >>> make_request({"x": np.array([[1.0, 2.0]]), "target": np.array([1])}, columnar=True)
    {'inputs': {'x': [[1.0, 2.0]], 'target': [1]}}
    """
    body = {} if signature_name is None else {"signature_name": str(signature_name)}
    if isinstance(inputs, dict):
        arrays = {str(name): _array(name, value) for name, value in inputs.items()}
        if not arrays:
            raise InputError("make_request received an empty dict of inputs.")
    else:
        arrays = {None: _array("inputs", inputs)}
    if columnar:
        values = {name: _values(array) for name, array in arrays.items()}
        body["inputs"] = values[None] if None in values else values
        return body
    sizes = {name: len(array) for name, array in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise InputError(
            f"The row format needs one batch size for all inputs. Received sizes: {sizes}. "
            "Pass columnar=True to send inputs of different batch sizes."
        )
    if None in arrays:
        body["instances"] = _values(arrays[None])
    else:
        n = next(iter(sizes.values()))
        body["instances"] = [{name: _values(array[i]) for name, array in arrays.items()} for i in range(n)]
    return body


def parse_response(response):
    """Turn a TF Serving ``predict`` response into NumPy arrays.

    Parameters
    ----------
    response : dict, str or bytes
        The decoded JSON body, or the raw text.

    Returns
    -------
    numpy.ndarray or dict of numpy.ndarray
        One array (batch axis first) when the signature has one output, else
        ``{output name: array}``, whichever format the request used. Floats
        are float64, integers int64, as JSON carries them; cast as needed.

    Raises
    ------
    ServingError
        For an ``{"error": ...}`` response, or a body with neither
        ``"predictions"`` nor ``"outputs"``.
    """
    if isinstance(response, (str, bytes, bytearray)):
        response = json.loads(response)
    if not isinstance(response, dict):
        raise ServingError(f"Expected a JSON object from TF Serving. Received: {type(response).__name__}")
    if "error" in response:
        raise ServingError(f"TF Serving error: {response['error']}")
    if "predictions" in response:
        rows = response["predictions"]
        if isinstance(rows, list) and rows and all(isinstance(row, dict) for row in rows):
            return {name: np.asarray([row[name] for row in rows]) for name in rows[0]}
        return np.asarray(rows)
    if "outputs" in response:
        outputs = response["outputs"]
        if isinstance(outputs, dict):
            return {name: np.asarray(value) for name, value in outputs.items()}
        return np.asarray(outputs)
    raise ServingError(
        "Not a TF Serving predict response: expected a 'predictions' or 'outputs' key. "
        f"Received keys: {sorted(response)}"
    )


def predict(
    url: str, inputs, *, signature_name: str | None = None, columnar: bool = False, timeout: float = 60.0
):
    """POST a ``predict`` request to TF Serving and return the outputs as NumPy arrays.

    Parameters
    ----------
    url : str
        The predict URL, e.g.
        ``"http://localhost:8501/v1/models/classifier_xai:predict"``.
    inputs, signature_name, columnar
        See :func:`make_request`.
    timeout : float
        Seconds to wait for the answer.

    Returns
    -------
    numpy.ndarray or dict of numpy.ndarray
        See :func:`parse_response`.

    Raises
    ------
    ServingError
        When the server answers with an error (the message is TF Serving's).
    """
    body = json.dumps(make_request(inputs, signature_name=signature_name, columnar=columnar)).encode()
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            text = answer.read()
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            message = json.loads(text)["error"]
        except (ValueError, KeyError, TypeError):
            message = text.decode(errors="replace")
        raise ServingError(f"TF Serving answered HTTP {error.code}: {message}") from None
    return parse_response(text)


def _values(array: np.ndarray):
    """Nested lists of Python values; float16/32 by their shortest text, which reads back exactly."""
    if array.dtype in (np.float16, np.float32):
        return np.vectorize(float, otypes=[object])(array.astype(str)).tolist()
    return array.tolist()


def _array(name, value) -> np.ndarray:
    array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    if array.dtype.kind not in "biufU":
        raise ParameterTypeError(f"Input {name!r} must hold numbers, booleans or text. Received dtype: {array.dtype}")
    if array.ndim == 0:
        raise InputError(f"Input {name!r} needs a batch axis. Received a scalar; pass np.array([value]).")
    return array
