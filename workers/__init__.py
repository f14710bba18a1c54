"""Background work: the `worker` role (`shardbox worker --config FILE`).

Workers claim outbox events and periodic jobs from the coordinator with leases
(workers/runner.py) and read or write bytes through the blob layer: malware scans
(workers/scan.py), garbage collection and expiry (workers/gc.py), ... Any number may run
against one coordinator (or several coordinators on one PostgreSQL); a killed worker loses
nothing. Imports: blob, coordinator's client side (api, client, records), config; never
the gateway.
"""
