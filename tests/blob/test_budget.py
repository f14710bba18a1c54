"""ByteBudget: bounded bytes in flight, FIFO service, cancellation gives bytes back."""

from __future__ import annotations

import asyncio

import pytest

from blob.budget import ByteBudget


def test_small_requests_share_the_budget_and_big_ones_wait_in_order():
    async def main():
        budget = ByteBudget(100)
        assert await budget.acquire(40) == 40
        assert await budget.acquire(40) == 40
        order = []

        async def want(n, tag):
            got = await budget.acquire(n)
            order.append(tag)
            return got

        big = asyncio.create_task(want(100, "big"))
        small = asyncio.create_task(want(10, "small"))   # fits, but must not overtake "big"
        await asyncio.sleep(0)
        assert order == []
        budget.release(40)
        budget.release(40)
        await asyncio.sleep(0)
        assert order == ["big"] and budget.used == 100
        budget.release(await big)
        await small
        assert order == ["big", "small"] and budget.used == 10

    asyncio.run(main())


def test_oversized_request_is_capped_and_cancelled_waiter_leaves_no_trace():
    async def main():
        budget = ByteBudget(50)
        assert await budget.acquire(500) == 50      # a chunk bigger than the budget still goes alone
        waiter = asyncio.create_task(budget.acquire(10))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        budget.release(50)
        assert budget.used == 0
        assert await budget.acquire(50) == 50

    asyncio.run(main())
