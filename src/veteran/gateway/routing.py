"""Which provider and model serve a request: a function's variant, or PROVIDER/MODEL."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

from veteran.config import Config, FewshotConfig, VariantConfig
from veteran.errors import BadRequest, NotFound
from veteran.http import Timeouts
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
    max_retries: int = 0
    timeouts: Timeouts | None = None  # the variant's own; None: the provider's
    # tried in order when this route fails (the function's fallbacks, without this variant)
    fallbacks: tuple[Route, ...] = ()
    fewshot: FewshotConfig | None = None  # examples put in by the caller (gateway/fewshot.py)

    def plan(self) -> tuple[Route, ...]:
        return (self, *self.fallbacks)

    def upstream_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """What the provider receives: the variant's params under the request's, the model
        name the provider knows, and the system prompt first."""
        out = {**self.params, **body} if self.params else dict(body)
        out.pop("veteran_tags", None)
        out["model"] = self.model
        if self.system:
            out["messages"] = [{"role": "system", "content": self.system}, *body["messages"]]
        return out


class Router:
    def __init__(self, config: Config, providers: dict[str, Provider]) -> None:
        self._providers = providers
        # function -> (variant names, weights, routes with fallbacks, routes as pinned: without)
        self._functions: dict[
            str, tuple[list[str], list[float], dict[str, Route], dict[str, Route]]
        ] = {}
        for fname, function in config.functions.items():
            pinned = {
                vname: Route(
                    provider=providers[variant.provider],
                    model=variant.provider_model,
                    function=fname,
                    variant=vname,
                    system=variant.system or function.system,
                    params=dict(variant.params),
                    prices=self._prices(variant.provider, variant.provider_model),
                    max_retries=_max_retries(variant, providers[variant.provider]),
                    timeouts=_timeouts(variant, providers[variant.provider]),
                    fewshot=variant.fewshot,
                )
                for vname, variant in function.variants.items()
            }
            routes = {
                vname: replace(route, fallbacks=tuple(
                    pinned[f] for f in function.fallbacks if f != vname
                ))
                for vname, route in pinned.items()
            }
            names = [n for n in routes if function.variants[n].weight > 0]
            weights = [function.variants[n].weight for n in names]
            self._functions[fname] = (names, weights, routes, pinned)

    def _prices(self, provider: str, model: str) -> ModelInfo | None:
        return self._providers[provider].settings.models.get(model)

    def functions(self) -> list[str]:
        return sorted(self._functions)

    def resolve(self, model: str, pinned_variant: str | None = None) -> Route:
        function = self._functions.get(model)
        if function is not None:
            names, weights, routes, pinned = function
            if pinned_variant is None:
                chosen = names[0] if len(names) == 1 else random.choices(names, weights)[0]
                return routes[chosen]
            if pinned_variant not in pinned:
                raise BadRequest(
                    f"function {model!r} has no variant {pinned_variant!r} "
                    f"(variants: {', '.join(pinned)})",
                    param="x-veteran-variant",
                )
            return pinned[pinned_variant]
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
            max_retries=provider.settings.retry.max_retries,
        )


    def reroute(self, route: Route, target: str) -> Route:
        """The route a rule sends a call to: `target` is a variant of `route`'s function,
        pinned (no fallbacks: work a rule keeps on one model never falls over to another), or
        PROVIDER/MODEL, still recorded as the function's."""
        if "/" in target:
            direct = self.resolve(target)
            return replace(direct, function=route.function, variant=None)
        if route.function is None or route.function not in self._functions:
            raise BadRequest(f"a rule routes to variant {target!r}, and this call names no "
                             "function", param="model")
        return self.resolve(route.function, target)


def _max_retries(variant: VariantConfig, provider: Provider) -> int:
    if variant.max_retries is not None:
        return variant.max_retries
    return provider.settings.retry.max_retries


def _timeouts(variant: VariantConfig, provider: Provider) -> Timeouts | None:
    """The variant's timeouts, each one it leaves out taken from its provider's settings."""
    own = (variant.connect_timeout, variant.read_timeout, variant.total_timeout)
    if own == (None, None, None):
        return None
    default = Timeouts()

    def pick(own: float | None, name: str, fallback: float) -> float:
        return own if own is not None else float(getattr(provider.settings, name, fallback))

    return Timeouts(
        connect=pick(variant.connect_timeout, "connect_timeout", default.connect),
        read=pick(variant.read_timeout, "read_timeout", default.read),
        total=pick(variant.total_timeout, "total_timeout", default.total),
    )
