import sys

from shardbox.cli import main

sys.exit(main())
