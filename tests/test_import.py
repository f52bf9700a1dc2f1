"""Importing restore is cheap (lazy registry) and changes no global state."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import json, logging, random, sys, warnings
import numpy as np, torch

def state():
    return repr((random.getstate(), np.random.get_state()[1].tolist(), torch.get_rng_state().tolist(),
                 torch.get_default_dtype(), torch.get_num_threads(), warnings.filters[:],
                 logging.root.handlers[:], logging.root.level, torch.backends.cudnn.benchmark,
                 torch.get_float32_matmul_precision(), torch.are_deterministic_algorithms_enabled()))

before = state()
import restore, restore.registry, restore.config, restore.metrics, restore.errors
after = state()
heavy = ["cv2", "lpips", "torchvision", "skimage", "scipy", "timm", "tensorboard", "PIL",
         "restore.archs.n2n_unet", "restore.data.paired_folder", "restore.data.image_io",
         "restore.losses.pixel", "restore.api", "restore.api.model", "restore.engine", "restore.demo", "gradio"]
print(json.dumps({"same": before == after, "loaded": [m for m in heavy if m in sys.modules]}))
"""


def test_import_is_lazy_and_side_effect_free():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["same"], "importing restore changed global state"
    assert result["loaded"] == [], f"importing restore pulled in {result['loaded']}"


LAZY_API = r"""
import json, sys
import restore
before = "restore.api" in sys.modules
names = sorted(n for n in ("Model", "list_architectures", "load", "load_options", "score") if n in dir(restore))
load = restore.load
print(json.dumps({"before": before, "after": "restore.api" in sys.modules, "names": names,
                  "same": load is sys.modules["restore.api.model"].load}))
"""


def test_the_api_names_import_the_api_on_first_use():
    out = subprocess.run([sys.executable, "-c", LAZY_API], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"before": False, "after": True, "same": True,
                      "names": ["Model", "list_architectures", "load", "load_options", "score"]}
    missing = subprocess.run([sys.executable, "-c", "import restore; restore.no_such_name"], capture_output=True, text=True)
    assert missing.returncode == 1 and "module 'restore' has no attribute 'no_such_name'" in missing.stderr
