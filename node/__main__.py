"""`python -m node --config FILE [rebuild-index]`: run a node without the shardbox CLI."""

from __future__ import annotations

import argparse
import json
import sys

from config.settings import ConfigError, load_config
from node.main import rebuild_index, run
from node.store import StoreLocked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node", description="shardbox storage node")
    parser.add_argument("--config", required=True, help="TOML config with [cluster] and [node]")
    parser.add_argument("command", nargs="?", choices=["serve", "rebuild-index"], default="serve")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, "node")
        if args.command == "rebuild-index":
            print(json.dumps(rebuild_index(cfg), indent=2))
        else:
            run(cfg)
    except (ConfigError, StoreLocked) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
