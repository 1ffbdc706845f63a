"""The Postgres store's listener closed while it is still connecting: nothing is reported
as a "Future exception was never retrieved" (seen when an ``afk worker`` stopped at once)."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from afk.store._pg_listener import Listener


def test_closing_a_listener_that_is_still_connecting_reports_nothing() -> None:
    reported: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: reported.append(ctx))
        connecting = asyncio.Event()

        async def connect() -> Any:
            connecting.set()
            await asyncio.sleep(3600)  # a server that never answers

        listener = Listener(connect, "afk_test")
        waiter = asyncio.ensure_future(listener.wait_any(5.0, None))
        await connecting.wait()
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        await listener.close()
        assert listener.mark() is None
        del waiter, listener
        gc.collect()
        await asyncio.sleep(0)

    asyncio.run(main())
    assert not [ctx for ctx in reported if "never retrieved" in str(ctx.get("message"))]
