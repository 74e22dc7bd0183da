"""`Gateway`: what a running server holds (config, providers, router, store, capture writer)."""

from __future__ import annotations

import logging
from typing import Any

from veteran.config import Config
from veteran.gateway.routing import Router
from veteran.providers.base import ModelInfo, Provider
from veteran.providers.registry import provider_class
from veteran.store import CaptureWriter, Store
from veteran.types import TrajectoryRecord

log = logging.getLogger("veteran.gateway")


class Gateway:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.providers: dict[str, Provider] = {
            name: provider_class(settings.kind)(name, settings)
            for name, settings in config.providers.items()
        }
        self.router = Router(config, self.providers)
        self.writer: CaptureWriter = store.writer(batch_max=config.capture.batch_max)
        self.durable = config.capture.durable
        self.max_body = config.server.max_body_bytes

    async def start(self) -> None:
        self.writer.start()
        started: list[Provider] = []
        try:
            for provider in self.providers.values():
                await provider.start()
                started.append(provider)
        except BaseException:
            for provider in started:
                await provider.close()
            await self.writer.close()
            raise

    async def close(self) -> None:
        for provider in self.providers.values():
            try:
                await provider.close()
            except Exception:
                log.exception("closing provider %s failed", provider.name)
        await self.writer.close()

    async def capture(self, record: TrajectoryRecord) -> None:
        """Hand the trajectory to the writer; in durable mode, return once it is committed."""
        if self.durable:
            await self.writer.submit(record)
        else:
            self.writer.submit_nowait(record)

    def capture_nowait(self, record: TrajectoryRecord) -> None:
        self.writer.submit_nowait(record)


def cost(prices: ModelInfo | None, usage: dict[str, Any] | None) -> float | None:
    """Cost of one call from per-million-token prices, when the config gives them."""
    if prices is None or usage is None:
        return None
    if prices.input_per_mtok is None and prices.output_per_mtok is None:
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    per_mtok = prompt * (prices.input_per_mtok or 0) + completion * (prices.output_per_mtok or 0)
    return per_mtok / 1e6
