# The two commands a newcomer needs:  `make up`  (run shardbox here)  and  `make test`.
# Both install what they need first (scripts/setup.sh), so they work on a fresh machine.

.PHONY: up test setup lint bench

up:
	@bash scripts/setup.sh
	@.venv/bin/shardbox up $(ARGS)

test:
	@bash scripts/setup.sh --test
	@bash scripts/test.sh

setup:
	@bash scripts/setup.sh --test

lint:
	@.venv/bin/ruff check .

bench:
	@.venv/bin/python bench/erasure.py
	@.venv/bin/python bench/node.py
	@.venv/bin/python bench/s3.py
