"""Python's ``round(x, digits)`` for a whole array at once, to the bit: the response bodies round every signal.

``np.round`` rounds ``x * 10**digits`` after that product was itself rounded to a float, so a value just off a
half-way point can round the other way than Python's correctly rounded ``round``. Here numpy rounds the values far
from a half-way point (there both agree exactly: the product's error is far smaller than its distance to the
half-way point, and dividing the integer by ``10**digits`` is correctly rounded like Python's decimal-to-float
step); the few near one, huge or not finite are rounded by Python itself.
"""

from __future__ import annotations

import numpy as np

_SAFE = 2.0**30  # |x · 10^digits| below this: the product's rounding error is < 2^-23, far inside _MARGIN
_MARGIN = 1e-6  # distance from a half-way point under which Python decides


def round_floats(values: np.ndarray, digits: int) -> list[float]:
    """``[round(float(v), digits) for v in values.ravel()]``, vectorised (same floats, bit for bit)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    scaled = x * 10.0**digits
    with np.errstate(invalid="ignore"):
        off_half = np.abs(scaled - np.floor(scaled) - 0.5)
        sure = (off_half > _MARGIN) & (np.abs(scaled) < _SAFE)
    out = (np.rint(scaled) / 10.0**digits).tolist()
    for i in np.flatnonzero(~sure).tolist():
        out[i] = round(float(x[i]), digits)
    return out
