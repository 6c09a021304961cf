"""Cost of a request in USD from its usage and the catalog's $/1M-token prices. Pure.

Usage follows the IR definition (input includes cache reads and writes, output includes reasoning), so:
    uncached input = input - cached - cache_write
    cost = uncached*input + cached*cached_input + cache_write*cache_write_price
         + (output - reasoning)*output + reasoning*reasoning_price
A missing cached/cache-write/reasoning price falls back to the plain input/output price. No price at all
-> None (unknown, shown as such; never a silent $0).
"""

from __future__ import annotations

from omniroute_providers.catalog import PriceSpec
from omniroute_providers.ir import Usage

PER_TOKENS = 1_000_000


def request_cost(usage: Usage | None, price: PriceSpec | None) -> float | None:
    if usage is None or price is None:
        return None
    cached = min(usage.cached_tokens, usage.input_tokens)
    cache_write = min(usage.cache_write_tokens, usage.input_tokens - cached)
    uncached = max(0, usage.input_tokens - cached - cache_write)
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    visible = usage.output_tokens - reasoning
    total = (
        uncached * price.input
        + cached * (price.cached_input if price.cached_input is not None else price.input)
        + cache_write * (price.cache_write if price.cache_write is not None else price.input)
        + visible * price.output
        + reasoning * (price.reasoning if price.reasoning is not None else price.output)
    )
    return total / PER_TOKENS
