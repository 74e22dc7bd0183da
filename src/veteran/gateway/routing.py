"""Which provider and model serve a request: a function's variant, or PROVIDER/MODEL."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from veteran.config import Config
from veteran.errors import BadRequest, NotFound
from veteran.providers.base import ModelInfo, Provider


@dataclass(frozen=True, slots=True)
class Route:
    provider: Provider
    model: str
    function: str | None = None
    variant: str | None = None
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    prices: ModelInfo | None = None


class Router:
    def __init__(self, config: Config, providers: dict[str, Provider]) -> None:
        self._providers = providers
        self._functions: dict[str, tuple[list[str], list[float], dict[str, Route]]] = {}
        for fname, function in config.functions.items():
            routes = {
                vname: Route(
                    provider=providers[variant.provider],
                    model=variant.provider_model,
                    function=fname,
                    variant=vname,
                    system=variant.system or function.system,
                    params=dict(variant.params),
                    prices=self._prices(variant.provider, variant.provider_model),
                )
                for vname, variant in function.variants.items()
            }
            names = list(routes)
            weights = [function.variants[n].weight for n in names]
            self._functions[fname] = (names, weights, routes)

    def _prices(self, provider: str, model: str) -> ModelInfo | None:
        return self._providers[provider].settings.models.get(model)

    def functions(self) -> list[str]:
        return sorted(self._functions)

    def resolve(self, model: str, pinned_variant: str | None = None) -> Route:
        function = self._functions.get(model)
        if function is not None:
            names, weights, routes = function
            if pinned_variant is None:
                chosen = names[0] if len(names) == 1 else random.choices(names, weights)[0]
                return routes[chosen]
            if pinned_variant not in routes:
                raise BadRequest(
                    f"function {model!r} has no variant {pinned_variant!r} "
                    f"(variants: {', '.join(names)})",
                    param="x-veteran-variant",
                )
            return routes[pinned_variant]
        if pinned_variant is not None:
            raise BadRequest(
                "x-veteran-variant applies only when `model` names a function",
                param="x-veteran-variant",
            )
        provider_name, _, provider_model = model.partition("/")
        provider = self._providers.get(provider_name)
        if provider is None or not provider_model or not provider.settings.knows_model(
            provider_model
        ):
            raise NotFound(
                f"unknown model {model!r}: use a function name or PROVIDER/MODEL "
                "(see GET /v1/models)",
                param="model",
                code="model_not_found",
            )
        return Route(
            provider=provider, model=provider_model,
            prices=self._prices(provider_name, provider_model),
        )
