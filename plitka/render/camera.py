"""A pinhole camera looking down at tiles lying on the ground (z up, one tile side = 1 unit)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    """Camera at `elevation`° above the ground and `distance` tile sides from the target (origin).

    `scale` and `offset` map the normalised image plane to output pixels; `fit` chooses them so
    given points fill the frame with a margin.
    """

    elevation: float
    azimuth: float
    distance: float
    scale: float = 1.0
    offset: tuple[float, float] = (0.0, 0.0)

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Camera position, right, up and forward unit vectors in world coordinates."""
        elevation, azimuth = math.radians(self.elevation), math.radians(self.azimuth)
        position = self.distance * np.array(
            [
                math.cos(elevation) * math.cos(azimuth),
                math.cos(elevation) * math.sin(azimuth),
                math.sin(elevation),
            ]
        )
        forward = -position / np.linalg.norm(position)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        return position, right, up, forward

    def normalised(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 2) image-plane coordinates (x right, y down)."""
        position, right, up, forward = self.basis()
        relative = np.asarray(points, dtype=np.float64) - position
        depth = relative @ forward
        return np.stack([relative @ right / depth, -(relative @ up) / depth], axis=1)

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 2) output pixel coordinates."""
        return self.normalised(points) * self.scale + np.asarray(self.offset)

    def depth(self, points: np.ndarray) -> np.ndarray:
        """Distance along the view direction: larger is farther (painter's order)."""
        position, _, _, forward = self.basis()
        return (np.asarray(points, dtype=np.float64) - position) @ forward

    def facing(self, point: np.ndarray, normal: np.ndarray) -> bool:
        """Whether a surface at `point` with outward `normal` faces the camera."""
        position = self.basis()[0]
        return float(np.dot(normal, position - point)) > 0.0

    def fit(self, points: np.ndarray, width: int, height: int, margin: float) -> Camera:
        """The same camera, scaled and centred so `points` fill the frame inside `margin`."""
        flat = self.normalised(points)
        low, high = flat.min(axis=0), flat.max(axis=0)
        span = np.maximum(high - low, 1e-9)
        scale = min(width * (1 - 2 * margin) / span[0], height * (1 - 2 * margin) / span[1])
        centre = (low + high) / 2
        offset = (width / 2 - centre[0] * scale, height / 2 - centre[1] * scale)
        return Camera(self.elevation, self.azimuth, self.distance, float(scale), offset)
