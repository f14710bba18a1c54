"""`python -m coordinator --config FILE`: run a coordinator (what `shardbox coordinator` does)."""

from __future__ import annotations

import argparse
import sys

from config.settings import ConfigError, load_config
from coordinator.main import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coordinator", description=__doc__)
    parser.add_argument("--config", required=True, help="TOML config file with [cluster] and [coordinator]")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, "coordinator")
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
