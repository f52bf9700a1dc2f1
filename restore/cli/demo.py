"""A local web page: pick a model, drop an image, compare before and after (needs the [demo] extra).

Runs on the CPU unless --device says otherwise, tiles large images (--tile), and listens on
127.0.0.1 only unless --host names another interface. With no weights given and a finished
`restore quickstart` run in ./quickstart, the page starts with the quickstart's model.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-opt", "--opt", dest="opt", metavar="FILE",
                        help="option file to start with (default: the quickstart's model, else the first infer file)")
    parser.add_argument("--weights", metavar="CKPT", help="weights file to start with (default: path.pretrained)")
    parser.add_argument("--device", default="cpu", metavar="DEV", help="auto, cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--tile", type=int, default=512, metavar="N",
                        help="restore images larger than N pixels in N x N tiles (0: the option file's infer.tile; default 512)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default 127.0.0.1: this machine only; 0.0.0.0 exposes the page)")
    parser.add_argument("--port", type=int, default=7860, metavar="N", help="port (default 7860; 0: any free port)")
    parser.add_argument("--quickstart-dir", default="quickstart", metavar="DIR",
                        help="where `restore quickstart` ran (its --workdir; default quickstart)")


def run(args: argparse.Namespace) -> int:
    from restore.demo.serve import import_gradio, serve
    from restore.errors import ConfigError

    if args.tile < 0:
        raise ConfigError(f"--tile must be a positive tile size (or 0 for the option file's), got {args.tile}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, got {args.port}")
    import_gradio()  # a missing extra is one line before anything else happens
    serve(option_file=args.opt, weights=args.weights, device=args.device, tile=args.tile, host=args.host,
          port=args.port, quickstart_dir=Path(args.quickstart_dir))
    return 0
