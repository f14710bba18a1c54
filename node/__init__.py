"""shardbox storage node: append-only volume files + LMDB index behind a signed shard HTTP API.

Entry points: `node.main.run(cfg)` (serve) and `node.main.rebuild_index(cfg)`; also
`shardbox node --config FILE [rebuild-index]`. Modules, one job each:

    records     on-disk record header and index entry formats
    volumes     volume files, space reservation, write sequence numbers
    index       LMDB index (id -> record, position -> id, corrupt list)
    scan        reading records back (recovery, rebuild, resync over damage)
    commit      group commit (one fdatasync per volume + one LMDB txn per batch)
    store       PUT/GET/DELETE logic, capacity, crash recovery at open
    compaction  rewriting volumes whose garbage passed the threshold
    scrub       rate-limited re-verification of every shard
    rebuild     rebuild-index from the volumes alone
    api         aiohttp handlers and middlewares (credential, logging, JSON errors)
    heartbeat   periodic /health posts to the coordinator
    metrics     counters and Prometheus text
"""
