"""The repair queue's queries: what queues work, how workers claim it, how outcomes land."""

from __future__ import annotations

from coordinator.records import ShardMove
from coordinator.schema import chunk_shards, nodes, repair_queue
from tests.coordinator.helpers import (
    expect,
    health_doc,
    md5,
    open_meta,
    put_object,
    register_nodes,
    rows,
    setup_tenant,
)


async def placement(meta, chunk_key: str) -> dict[int, str]:
    return {r.idx: r.node_id for r in await rows(meta, chunk_shards) if r.chunk_key == chunk_key}


async def stored_chunk(meta, key, name: str, data: bytes) -> str:
    obj = await put_object(meta, key, "bkt", name, [data])
    got = await meta.get_object(key.tenant_id, "bkt", obj.key, with_chunks=True)
    return got.chunks[0].chunk_key


async def test_claims_order_by_lost_shards_and_leases_exclude_other_workers(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta, 16)
        key = await setup_tenant(meta)
        one = await stored_chunk(meta, key, "one", b"one lost")
        three = await stored_chunk(meta, key, "three", b"three lost")
        moved = await stored_chunk(meta, key, "moved", b"only moves")
        await meta.report_shard_failure(one, 4, (await placement(meta, one))[4], "checksum mismatch")
        for i in (1, 2, 3):
            await meta.report_shard_failure(three, i, (await placement(meta, three))[i], "missing")
        node = (await placement(meta, moved))[0]
        await meta.drain_node(node)  # queues the shard of `moved` (and maybe others) as a move

        first = await meta.claim_repairs("w1", limit=1)
        assert [t.chunk_key for t in first] == [three]
        assert {1, 2, 3} <= {t.index for t in first[0].targets}  # (and a drained one, if any)
        # A claimed chunk is not handed to another worker while the lease runs.
        second = await meta.claim_repairs("w2", limit=16)
        assert three not in {t.chunk_key for t in second}
        assert second[0].chunk_key == one  # one lost shard before pure moves
        assert moved in {t.chunk_key for t in second}
        # The lease runs out: the chunk is claimable again.
        later = meta.now() + 301
        meta.now = lambda: later
        await register_nodes(meta, 16)  # (heartbeats: the nodes are still up)
        again = await meta.claim_repairs("w3", limit=16)
        assert three in {t.chunk_key for t in again}
        await expect("InvalidArgument", meta.claim_repairs("", limit=1))
        await expect("InvalidArgument", meta.claim_repairs("w", limit=0))


async def test_targets_stay_on_good_nodes_and_move_off_drained_removed_and_dead_ones(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta, 18)
        key = await setup_tenant(meta)
        ck = await stored_chunk(meta, key, "k", b"payload")
        before = await placement(meta, ck)
        await meta.report_shard_failure(ck, 0, before[0], "checksum mismatch")
        await meta.drain_node(before[1])
        [task] = await meta.claim_repairs("w", limit=4)
        targets = {t.index: t.node_id for t in task.targets}
        assert targets[0] == before[0]  # corrupt on a good node: rewritten there
        assert targets[1] not in before.values()  # drained: to a node without a shard of it
        assert set(task.readable) == set(range(14))  # a draining node still serves reads
        # The worker moved shard 1 and rewrote shard 0: the placement follows, the queue empties.
        await meta.complete_repair(
            ck,
            "w",
            [ShardMove(1, before[1], targets[1], "c1"), ShardMove(0, before[0], before[0], "c0")],
            [],
            [],
        )
        after = await placement(meta, ck)
        assert after[1] == targets[1] and after[0] == before[0]
        assert [r for r in await rows(meta, repair_queue) if r.chunk_key == ck] == []
        status = await meta.repair_status()
        assert status["repaired_shards"] == 2 and status["backlog_shards"] >= 0


async def test_a_move_only_lands_if_the_placement_still_names_the_node_read(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta, 16)
        key = await setup_tenant(meta)
        ck = await stored_chunk(meta, key, "k", b"payload")
        before = await placement(meta, ck)
        await meta.complete_repair(ck, "w", [ShardMove(3, "someone-else", "node-15", "x")], [], [])
        assert (await placement(meta, ck))[3] == before[3]


async def test_failures_back_off_and_are_shown(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta, 14)
        key = await setup_tenant(meta)
        ck = await stored_chunk(meta, key, "k", b"payload")
        await meta.report_shard_failure(ck, 7, (await placement(meta, ck))[7], "missing")
        assert len(await meta.claim_repairs("w")) == 1
        await meta.complete_repair(ck, "w", [], [], [(7, "node refused")])
        assert await meta.claim_repairs("w") == []  # backing off
        status = await meta.repair_status()
        assert status["backing_off_shards"] == 1
        assert status["errors"][0]["error"] == "shard 7: node refused"
        assert status["errors"][0]["attempts"] == 1
        later = meta.now() + 10
        meta.now = lambda: later
        await register_nodes(meta, 14)
        assert [t.chunk_key for t in await meta.claim_repairs("w")] == [ck]


async def test_nodes_down_past_the_grace_period_and_removed_nodes_are_queued(database_url):
    async with open_meta(database_url, node_repair_after_s=600.0) as meta:
        await register_nodes(meta, 15)
        key = await setup_tenant(meta)
        ck = await stored_chunk(meta, key, "k", b"payload")
        victim = (await placement(meta, ck))[5]
        others = [f"node-{i:02d}" for i in range(15) if f"node-{i:02d}" != victim]
        start = meta.now()

        async def beat_all_but_victim(at: float) -> None:
            meta.now = lambda: at
            for i in range(15):
                doc = health_doc(i)
                if doc["node_id"] != victim:
                    doc.pop("volumes"), doc.pop("garbage_bytes"), doc.pop("last_scrub")
                    await meta.heartbeat(**doc)

        await beat_all_but_victim(start + 300)  # found down now: the grace period starts
        assert await meta.claim_repairs("w") == []
        await beat_all_but_victim(start + 800)  # within the grace period
        assert await meta.claim_repairs("w") == []
        await beat_all_but_victim(start + 901)  # past it: its shards are queued
        [task] = await meta.claim_repairs("w")
        assert [(t.index, t.node_id in others) for t in task.targets] == [(5, True)]
        assert task.reasons == ["node_down"]
        assert 5 not in task.readable

        # remove: at once, whatever the grace period; refused for an up node still holding shards
        holder = (await placement(meta, ck))[6]
        err = await expect("InvalidRequest", meta.remove_node(holder))
        assert "drain it first" in err.message
        await expect("NoSuchNode", meta.remove_node("nope"))
        meta.now = lambda: start + 10_000  # everyone silent: remove one of them
        removed = await meta.remove_node(holder)
        assert removed["queued_shards"] >= 1
        queued = {(r.idx, r.reason) for r in await rows(meta, repair_queue) if r.chunk_key == ck}
        assert (6, "node_removed") in queued
        states = {r.node_id: r.state for r in await rows(meta, nodes)}
        assert states[holder] == "removed"


async def test_scrub_reports_in_heartbeats_queue_the_corrupt_shards_once(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta, 14)
        key = await setup_tenant(meta)
        ck = await stored_chunk(meta, key, "k", b"payload")
        holder = (await placement(meta, ck))[2]
        i = int(holder.split("-")[1])
        doc = health_doc(i)
        doc.pop("volumes"), doc.pop("garbage_bytes"), doc.pop("last_scrub")
        await meta.heartbeat(**doc, health={"corrupt": [f"{ck}.2", f"{ck}.9", "junk", "deadbeef.1"]})
        queued = [(r.chunk_key, r.idx, r.reason, r.node_id) for r in await rows(meta, repair_queue)]
        assert queued == [(ck, 2, "scrub", holder)]  # .9 is not on that node; the rest unknown
        await meta.claim_repairs("w")
        await meta.complete_repair(ck, "w", [ShardMove(2, holder, holder, "fixed")], [], [])
        # the same list again (sent before the node learnt of the fix): not queued again
        await meta.heartbeat(**doc, health={"corrupt": [f"{ck}.2"]})
        assert await rows(meta, repair_queue) == []


async def test_placement_uses_the_pool_of_the_storage_tier(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta, 14)
        for i in range(14, 28):
            doc = health_doc(i, pool="cold")
            doc.pop("volumes"), doc.pop("garbage_bytes"), doc.pop("last_scrub")
            await meta.heartbeat(**doc, storage_class="COLD")
        key = await setup_tenant(meta)
        [hot] = await meta.place_chunks(key.tenant_id, [(md5(b"x") * 2, 10)])
        [cold] = await meta.place_chunks(key.tenant_id, [(md5(b"y") * 2, 10)], "GLACIER")
        assert {int(s.node_id.split("-")[1]) < 14 for s in hot.shards} == {True}
        assert {int(s.node_id.split("-")[1]) >= 14 for s in cold.shards} == {True}
        infos = {n.node_id: n for n in await meta.list_nodes()}
        assert infos["node-20"].storage_class == "COLD" and infos["node-20"].pool == "cold"
