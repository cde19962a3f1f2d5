"""One seed drives everything: a named ``SeedSequence`` tree.

Each component asks for its own stream by name (``world``, ``users``, ``policy``, ...). A stream's
seed depends only on the root seed and the name, never on the order in which streams were asked
for, so adding a component does not shift the randomness of the others.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["RngTree"]


class RngTree:
    """Named child generators of one root seed.

    >>> tree = RngTree(7)
    >>> a = tree.generator("users")
    >>> b = RngTree(7).generator("users")
    >>> bool(a.random() == b.random())
    True
    """

    def __init__(self, seed: int) -> None:
        if seed < 0:
            raise ValueError("seed must be >= 0")
        self.seed = int(seed)

    def sequence(self, name: str) -> np.random.SeedSequence:
        """The ``SeedSequence`` of stream ``name`` (stable across versions and call order)."""
        key = zlib.crc32(name.encode("utf-8"))
        return np.random.SeedSequence(entropy=self.seed, spawn_key=(key,))

    def generator(self, name: str) -> np.random.Generator:
        """A fresh PCG64 generator for stream ``name``."""
        return np.random.Generator(np.random.PCG64(self.sequence(name)))
