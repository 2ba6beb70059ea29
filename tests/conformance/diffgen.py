"""Seeded draws shared by the differential generators (butane_diff, ignition_diff)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any


class Draws:
    """One seed's random choices: the same seed draws the same case on every machine."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def p(self, prob: float) -> bool:
        return self.r.random() < prob

    def pick(self, xs: list) -> Any:
        return self.r.choice(xs)

    def some(self, make: Callable[[], Any], most: int = 3) -> list:
        return [make() for _ in range(self.r.randint(1, most))]
