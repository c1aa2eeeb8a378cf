"""Admission to base URLs: least busy first, waiting when full, failing URLs benched."""

from __future__ import annotations

import asyncio

from turnwise.models.url_pool import UrlPool


async def test_least_busy_first_and_ties_spread():
    pool = UrlPool(3, limit=2)
    picks = [await pool.acquire() for _ in range(3)]
    assert sorted(picks) == [0, 1, 2]  # one each before any URL gets a second
    pool.release(picks[0])
    assert await pool.acquire() == picks[0]  # now the only one with one in flight less


async def test_avoid_is_taken_only_when_alone_with_room():
    pool = UrlPool(2, limit=1)
    assert await pool.acquire(avoid=0) == 1
    assert await pool.acquire(avoid=0) == 0  # URL 1 is full: the avoided URL is better than waiting


async def test_waits_when_full_first_come_first_served():
    pool = UrlPool(1, limit=1)
    assert await pool.acquire() == 0
    order: list[str] = []

    async def take(name: str) -> None:
        await pool.acquire()
        order.append(name)

    first, second = asyncio.create_task(take("a")), asyncio.create_task(take("b"))
    await asyncio.sleep(0.01)
    assert order == [] and pool.in_flight == [1]
    pool.release(0)
    await asyncio.sleep(0.01)
    pool.release(0)
    await asyncio.gather(first, second)
    assert order == ["a", "b"]


async def test_cancelled_waiter_leaks_no_slot():
    pool = UrlPool(1, limit=1)
    await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    waiter.cancel()
    await asyncio.sleep(0.01)
    pool.release(0)
    assert await asyncio.wait_for(pool.acquire(), 1) == 0


async def test_failing_url_benched_then_back():
    pool = UrlPool(2, limit=4, strikes=2, cooldown_s=0.05)
    for _ in range(2):
        i = await pool.acquire(avoid=1)
        assert i == 0
        pool.release(0, failed=True)
    assert [await pool.acquire() for _ in range(4)] == [1, 1, 1, 1]  # 0 is benched
    blocked = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    assert not blocked.done()  # URL 0 has room, but it is benched while URL 1 is healthy
    await asyncio.sleep(0.06)
    pool.release(1)  # any release re-examines the URLs: the bench is over
    assert await asyncio.wait_for(blocked, 1) == 0  # least busy again, and no longer benched
    pool.release(0, failed=False)
    assert pool.failures[0] == 0  # one success clears its record


async def test_all_benched_means_all_usable():
    pool = UrlPool(2, limit=1, strikes=1, cooldown_s=60)
    for i in (0, 1):
        j = await pool.acquire(avoid=1 - i)
        pool.release(j, failed=True)
    assert sorted([await pool.acquire(), await pool.acquire()]) == [0, 1]
