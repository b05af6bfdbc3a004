"""Tutorial: export a trained model's explainer and query it like TF Serving does.

Run it top to bottom (about half a minute on two CPU cores, no downloads):

    python tutorials/export_and_serve.py [output directory]

It trains a small CNN on generated images, exports an LRP explainer as a
SavedModel in the versioned layout TF Serving expects, reloads the SavedModel
with plain TensorFlow (as a server would), queries its signatures, and builds
the REST request a client sends to ``tensorflow_model_server``. See
docs/serving.md for running the model server itself.

Set ``TFXAI_SERVING_URL`` (e.g. ``http://localhost:8501/v1/models/classifier_xai:predict``)
to also query a running model server that serves the exported directory.
"""

import json
import os
import pathlib
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfxai  # noqa: E402
from tfxai import serving  # noqa: E402
from tfxai.export import export_analyzers  # noqa: E402

OUT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "tfxai-serving-tutorial")
SIZE, CLASSES = 12, ("horizontal bar", "vertical bar", "square")

# --- 1. Data: a bright shape on a noisy 12x12 image; the class is the shape.


def make_images(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.2, (n, SIZE, SIZE, 1)).astype("float32")
    labels = rng.integers(0, len(CLASSES), n)
    for image, label in zip(images, labels):
        r, c = rng.integers(2, SIZE - 5, 2)
        if label == 0:
            image[r, c : c + 5] += 1.0
        elif label == 1:
            image[r : r + 5, c] += 1.0
        else:
            image[r : r + 3, c : c + 3] += 1.0
    return images, labels


x_train, y_train = make_images(1200, seed=0)
x_test, y_test = make_images(8, seed=1)

# --- 2. A small CNN, trained for a few seconds. The input name becomes the name of the
# served input, so give it one.

keras.utils.set_random_seed(0)
model = keras.Sequential(
    [
        keras.Input((SIZE, SIZE, 1), name="image"),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(len(CLASSES), activation="softmax"),
    ],
    name="shapes",
)
model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=4, batch_size=64, verbose=0)
accuracy = model.evaluate(*make_images(300, seed=2), verbose=0)[1]
print(f"test accuracy: {accuracy:.2f}")

# --- 3. Explain in-process, then export. `export` writes a SavedModel with a
# `serving_default` signature (image -> predictions, relevance, explained) and an
# `explain_target` signature that also takes the class to explain per image.

analyzer = tfxai.create_analyzer("lrp.epsilon_plus_flat", model)
relevance = analyzer.analyze(x_test)

base = OUT / "models" / "classifier_xai"  # TF Serving's --model_base_path
analyzer.export(base / "1", overwrite=True)
print(f"exported version 1 to {base / '1'}")

# A later version can serve several methods, one signature pair each; serving_default
# stays the first. TF Serving picks up the highest version number by itself.
gradient = tfxai.create_analyzer("gradient", model)
export_analyzers({"lrp": analyzer, "gradient": gradient}, base / "2", overwrite=True)

# --- 4. Load it the way a server does: plain TensorFlow, no tfxai needed.

loaded = tf.saved_model.load(str(base / "1"))


def describe(specs):
    return {key: (spec.dtype.name, spec.shape.as_list()) for key, spec in specs.items()}


for name, signature in sorted(loaded.signatures.items()):
    inputs, outputs = signature.structured_input_signature[1], signature.structured_outputs
    print(f"signature {name}: inputs {describe(inputs)} -> outputs {describe(outputs)}")

served = loaded.signatures["serving_default"](image=tf.constant(x_test))
served = {key: value.numpy() for key, value in served.items()}
difference = np.abs(served["relevance"] - relevance).max()
print(f"served relevance vs analyze: max abs difference {difference:.2g}")
assert difference <= 1e-6

# Explain "vertical bar" for every image, whatever the model predicted.
target = np.full(len(x_test), CLASSES.index("vertical bar"), np.int32)
served_target = loaded.signatures["explain_target"](image=tf.constant(x_test), target=tf.constant(target))
wanted = analyzer.analyze(x_test, neuron_selection=target)
assert np.abs(served_target["relevance"].numpy() - wanted).max() <= 1e-6

# Relevance is conserved up to what biases absorb: explained ~ sum of relevance.
summed = served["relevance"].reshape(len(x_test), -1).sum(axis=1)
for label, probs, explained, total in zip(y_test, served["predictions"], served["explained"], summed):
    predicted = CLASSES[int(np.argmax(probs))]
    print(f"true {CLASSES[label]:>14}, predicted {predicted:>14}: logit {explained:5.2f}, R {total:5.2f}")

version2 = tf.saved_model.load(str(base / "2")).signatures
print(f"version 2 signatures: {sorted(version2)}")

# --- 5. The REST request a client sends to tensorflow_model_server, built from NumPy.

request = serving.make_request(x_test[:2])  # row format: {"instances": [image, image]}
text = json.dumps(request)
(OUT / "request.json").write_text(text)
print(f"request body: {text[:80]}... ({len(text)} bytes in {OUT / 'request.json'})")
print(f"curl -d @{OUT / 'request.json'} localhost:8501/v1/models/classifier_xai:predict")

# TF Serving answers a row-format request with one object per image, keyed by output
# name. Here is that layout, filled from the signature we just ran:
response = {"predictions": [{key: value[i].tolist() for key, value in served.items()} for i in range(2)]}
outputs = serving.parse_response(json.dumps(response))
print(f"parsed response: { {k: v.shape for k, v in outputs.items()} }")

url = os.environ.get("TFXAI_SERVING_URL")
if url:
    answer = serving.predict(url, x_test[:2])
    print(f"model server relevance vs analyze: {np.abs(answer['relevance'] - relevance[:2]).max():.2g}")

# --- 6. A picture of what the server returns: image and relevance side by side.

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

figure, axes = plt.subplots(2, 4, figsize=(8, 4))
for i in range(4):
    heat = served["relevance"][i, :, :, 0]
    limit = np.abs(heat).max() or 1.0
    axes[0, i].imshow(x_test[i, :, :, 0], cmap="gray")
    axes[0, i].set_title(CLASSES[y_test[i]], fontsize=8)
    axes[1, i].imshow(heat, cmap="bwr", vmin=-limit, vmax=limit)
    for axis in axes[:, i]:
        axis.axis("off")
figure.savefig(OUT / "served_relevance.png", dpi=80)
print(f"wrote {OUT / 'served_relevance.png'}")
