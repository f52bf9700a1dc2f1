"""Export a trained network to ONNX or OpenVINO IR, for running it without restore.

Writes the model file (``--format openvino``: ``.xml`` and ``.bin``) and ``<out>.json``, a sidecar
with what the file does not hold: size multiple, padding, scale, input keys, normalisation,
opset and versions. The file is checked against torch on a random input first, and that check
is printed in one line; nothing is written when the export or the check fails. See
``docs/export.md`` for running the file with onnxruntime or openvino alone.
"""

from __future__ import annotations

import argparse

from restore.cli.common import (
    add_network_from_weights_argument,
    add_option_arguments,
    load_from_args,
    require,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_option_arguments(parser)
    parser.add_argument("--weights", metavar="CKPT", help="weights to export (default: path.pretrained)")
    parser.add_argument("--format", required=True, metavar="FORMAT", help="onnx (an .onnx file) or openvino (.xml + .bin)")
    parser.add_argument("--out", required=True, metavar="PATH", help="the model file to write (.onnx, or .xml for openvino)")
    add_network_from_weights_argument(parser)


def run(args: argparse.Namespace) -> int:
    from restore.errors import ConfigError

    options = load_from_args(args)
    if not args.network_from_weights:
        require(options, "network", command="export")
    # imported here: the engine pulls in torch, which `restore --help` does not need
    from restore.engine.backends.deploy import (
        export_network,
        output_paths,
        refuse_inputs,
    )
    from restore.engine.benchmark import resolve_weights
    from restore.engine.checkpoint import load_weights
    from restore.engine.network import build_network
    from restore.engine.weights_meta import match_network

    weights = resolve_weights(options, args.weights)
    # a bad --format, suffix or output path fails before anything is loaded
    refuse_inputs(output_paths(args.out, args.format), [weights, args.opt])
    if not weights.is_file():
        raise ConfigError(f"--weights '{weights}': no such file")
    options = match_network(options, weights, network_from_weights=args.network_from_weights,
                            say=lambda text: print(text))
    model = build_network(options)
    load_weights(model, weights, strict=options.path.strict_load)
    network = options.to_dict().get("network")
    done = export_network(model, args.format, args.out, weights=weights, network=network,
                          inputs=[args.opt])
    print(done.line())
    return 0
