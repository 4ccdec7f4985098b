"""Geodesics of the Poincaré disk, as points to draw: the plots and the viewer draw the class tree with them.

A geodesic of the disk is an arc of the circle through both points that meets the boundary at right
angles (its centre c and radius r satisfy |c|² = r² + 1), or a diameter when the points are collinear
with the centre.
"""

from __future__ import annotations

import numpy as np

_COLLINEAR = 1e-9  # |p × q| below this: the geodesic is a straight line through the centre


def geodesic_circle(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Centre and radius of the circle orthogonal to the boundary through p and q; None for a diameter."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    cross = p[0] * q[1] - p[1] * q[0]
    if abs(cross) < _COLLINEAR:
        return None
    # orthogonality |c|² = r² + 1 and |c - x|² = r² give 2 c·x = 1 + |x|² for x = p, q
    c = np.linalg.solve(2 * np.stack([p, q]), np.array([1 + p @ p, 1 + q @ q]))
    return c, float(np.sqrt(c @ c - 1))


def geodesic_points(p: np.ndarray, q: np.ndarray, n: int = 64) -> np.ndarray:
    """(n, 2) points along the geodesic from p to q: the short arc of `geodesic_circle`, or a segment."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    t = np.linspace(0.0, 1.0, n)[:, None]
    circle = geodesic_circle(p, q)
    if circle is None:
        return p + t * (q - p)
    c, r = circle
    a, b = np.arctan2(*(p - c)[::-1]), np.arctan2(*(q - c)[::-1])
    sweep = (b - a + np.pi) % (2 * np.pi) - np.pi  # the arc inside the disk spans less than half a turn
    angles = a + t[:, 0] * sweep
    return c + r * np.column_stack([np.cos(angles), np.sin(angles)])
