"""Wire formats other than the gateway's internal one (OpenAI chat completions), translated at
the edge: pure functions from one vendor's shapes to the other's and back, with no I/O, so the
surfaces (gateway) and providers that speak them share one tested translation. `shapes` builds
the internal format itself.
"""
