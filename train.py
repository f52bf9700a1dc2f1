"""``python train.py -opt F`` == ``restore train -opt F``."""

import sys

from restore.cli.main import run_command

if __name__ == "__main__":
    sys.exit(run_command("train"))
