"""``tfxai demo``: train a small CNN on generated shapes, explain it, write heatmaps, score the methods."""

from __future__ import annotations

import pathlib
import time

from tfxai.cli.options import EXIT_OK, subparser

DEMO_METHODS = {
    "gradient": {},
    "input_t_gradient": {},
    "integrated_gradients": {"steps": 32},
    "lrp.z": {},
    "lrp.epsilon": {"epsilon": 0.1},
    "lrp.epsilon_plus_flat": {},
    "lrp.epsilon_gamma_box": {"low": 0.0, "high": 1.0},
    "lrp.alpha_1_beta_0": {},
}
"""Methods the demo compares, with their parameters (images lie in [0, 1])."""


def run_demo(args) -> int:
    """Train a CNN on generated shapes, explain test images, write heatmap PNGs."""
    import numpy as np  # noqa: PLC0415

    import tfxai  # noqa: PLC0415
    from tfxai import datasets, visualize  # noqa: PLC0415

    start = time.perf_counter()
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    print(f"training a small CNN on {args.samples} generated 32x32 images ({args.epochs} epochs)...")
    model, (x_test, y_test), accuracy = datasets.train_shapes_cnn(args.samples, args.epochs, args.seed, 400)
    print(f"test accuracy: {accuracy:.3f}  ({time.perf_counter() - start:.1f} s)")

    shown = np.concatenate(
        [np.flatnonzero(y_test == label)[:2] for label in range(len(datasets.SHAPE_CLASSES))]
    )
    images = x_test[shown]
    relevances = {}
    print(f"{'method':24s} {'time s':>7s}")
    for name, params in DEMO_METHODS.items():
        began = time.perf_counter()
        analyzer = tfxai.create_analyzer(name, model, **params)
        relevances[name], delta = analyzer.analyze(images, return_delta=True)
        print(f"{name:24s} {time.perf_counter() - began:7.2f}")
        if name == "lrp.epsilon":
            explained = delta + relevances[name].reshape(len(images), -1).sum(axis=1)
            print(conservation_sentence(delta, explained))

    titles = [datasets.SHAPE_CLASSES[label] for label in y_test[shown]]
    paths = [output / "heatmaps.png"]
    visualize.save_figure(visualize.plot_grid(images, relevances, titles, colorbar=True), paths[0])
    for name, relevance in relevances.items():
        path = output / f"{name.replace('.', '_')}.png"
        visualize.save_figure(visualize.plot_grid(images, {name: relevance}, titles, colorbar=True), path)
        paths.append(path)
    print("wrote " + ", ".join(str(p) for p in paths))
    masks = datasets.make_shapes(400, seed=args.seed + 1, return_masks=True)[2]  # the masks of x_test
    _print_demo_evaluation(model, images, masks[shown])
    print(f"done in {time.perf_counter() - start:.1f} s")
    return EXIT_OK


DEMO_METRICS = ("morf", "abpc", "relevance_mass_accuracy", "random_logit")
"""The short comparison the demo prints: faithfulness, localisation on the shapes' masks, a sanity check."""


def _print_demo_evaluation(model, images, masks):
    import tfxai  # noqa: PLC0415

    began = time.perf_counter()
    result = tfxai.evaluate(
        model, images, DEMO_METHODS, list(DEMO_METRICS), masks=masks, patch_size=4, steps=16, verbose=0
    )
    seconds = time.perf_counter() - began
    print(f"how good are the explanations? tfxai.evaluate on the same images ({seconds:.1f} s):")
    print(result.to_markdown())
    print("(higher is better for metrics marked ↑; see the docs page 'Which method should I trust?')")


def conservation_sentence(delta, explained) -> str:
    """One sentence on LRP-epsilon's conservation delta, relative to the explained logits."""
    import numpy as np  # noqa: PLC0415

    share = float(np.median(np.abs(delta) / np.maximum(np.abs(explained), 1e-12)))
    return (
        f"lrp.epsilon conservation: the pixel relevance adds up to the explained logit minus "
        f"{float(np.median(delta)):.3g} (median over samples; {share:.0%} of the logit), the relevance that "
        "the biases and the epsilon stabiliser take (negative when the biases take negative relevance); "
        "0 would be exact conservation."
    )


def add_demo_command(subparsers):
    parser = subparser(
        subparsers,
        "demo",
        help="train a small CNN on generated images and write heatmaps of several methods",
        description="Generate coloured shapes on noise (no downloads), train a small CNN, explain test "
        "images with gradient and LRP methods and write the heatmaps side by side as PNG files.",
    )
    parser.add_argument(
        "--output", default="tfxai-demo", help="folder for the PNG files (default: tfxai-demo)"
    )
    parser.add_argument("--epochs", type=int, default=4, help="training epochs (default: 4)")
    parser.add_argument("--samples", type=int, default=2000, help="training images (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.set_defaults(handler=run_demo)
