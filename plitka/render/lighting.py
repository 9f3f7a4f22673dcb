"""Light on the granule height field: key light, sky light, occlusion, seams, binder sheen.

Everything is a per-pixel factor on the material's albedo in linear light (the colour truth step
then normalises it per colour, so the palette `hex` stays the mean colour under this light):

- normals from the height field (Sobel);
- a key light (Lambert) with a short screen-space shadow march, so a high granule casts a
  contact shadow onto its lower neighbour;
- a sky light weighted by how much of the sky a normal sees and by ambient occlusion (the height
  below the local mean height);
- seams: pixels near a granule border are darkened, whatever the neighbour's colour;
- a weak Blinn-Phong specular for the polyurethane binder film, returned separately because it
  is achromatic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Light:
    """One lighting setup. Directions: azimuth in image degrees (0 = from the right, 90 = from the top)."""

    name: str
    key_azimuth: float
    key_elevation: float
    key: float
    sky: float
    specular: float
    shininess: float
    seam_darkness: float
    occlusion: float


LIGHTS = {
    "studio": Light(
        name="studio",
        key_azimuth=125.0,
        key_elevation=42.0,
        key=0.55,
        sky=0.6,
        specular=0.025,
        shininess=18.0,
        seam_darkness=0.55,
        occlusion=0.6,
    ),
    "daylight": Light(
        name="daylight",
        key_azimuth=100.0,
        key_elevation=58.0,
        key=0.62,
        sky=0.6,
        specular=0.025,
        shininess=16.0,
        seam_darkness=0.5,
        occlusion=0.5,
    ),
}
SHADOW_STEPS = (1.0, 2.0, 3.0, 4.5)
SHADOW_DARKNESS = 0.5
NORMAL_SMOOTHING = 0.7  # px
SEAM_WIDTH = 1.6  # px over which a seam fades out


@dataclass(frozen=True)
class Shading:
    """Diffuse factor (multiplies the albedo) and achromatic specular, both linear light."""

    diffuse: np.ndarray
    specular: np.ndarray


def shade(height: np.ndarray, border_distance: np.ndarray, diameter: float, light: Light) -> Shading:
    """Light a granule height field (px units) seen from straight above the surface."""
    # A lens and a real chip's rounded cut edge both soften the one-pixel steps of the plan.
    smooth = cv2.GaussianBlur(height, (0, 0), NORMAL_SMOOTHING)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    inverse_norm = 1.0 / np.sqrt(gx * gx + gy * gy + 1.0)

    azimuth = math.radians(light.key_azimuth)
    elevation = math.radians(light.key_elevation)
    lx = math.cos(elevation) * math.cos(azimuth)
    ly = -math.cos(elevation) * math.sin(azimuth)  # image y points down
    lz = math.sin(elevation)
    lambert = np.maximum((-gx * lx - gy * ly + lz) * inverse_norm, 0.0)
    lambert *= _cast_shadow(height, lx, ly, lz)

    occlusion = _ambient_occlusion(height, diameter, light.occlusion)
    sky = (0.5 + 0.5 * inverse_norm) * occlusion
    seam = _seam_factor(border_distance, light.seam_darkness)

    diffuse = (light.key / lz) * lambert
    diffuse += light.sky * sky
    diffuse *= seam

    hx, hy, hz = lx, ly, lz + 1.0
    half_norm = math.sqrt(hx * hx + hy * hy + hz * hz)
    cosine = np.maximum((-gx * hx - gy * hy + hz) * inverse_norm / half_norm, 0.0)
    # cosine ** shininess as exp(shininess · log(cosine)): OpenCV's exp/log are several times faster.
    lobe = cv2.exp(cv2.log(np.maximum(cosine, 1e-6)) * np.float32(light.shininess))
    specular = light.specular * lobe * seam
    return Shading(diffuse=diffuse.astype(np.float32), specular=specular.astype(np.float32))


def _cast_shadow(height: np.ndarray, lx: float, ly: float, lz: float) -> np.ndarray:
    """1 in light, down to 0.5 where a nearby higher granule blocks the key light.

    Marches a few whole-pixel steps towards the light (array slices, no resampling): a pixel is
    shadowed by how far the surface there rises above the light ray.
    """
    planar = math.hypot(lx, ly)
    ux, uy = lx / planar, ly / planar
    rise = lz / planar
    rows, cols = height.shape
    blocked = np.zeros_like(height)
    for step in SHADOW_STEPS:
        dx, dy = round(ux * step), round(uy * step)
        distance = math.hypot(dx, dy)
        target = blocked[max(-dy, 0) : rows - max(dy, 0), max(-dx, 0) : cols - max(dx, 0)]
        here = height[max(-dy, 0) : rows - max(dy, 0), max(-dx, 0) : cols - max(dx, 0)]
        there = height[max(dy, 0) : rows - max(-dy, 0), max(dx, 0) : cols - max(-dx, 0)]
        np.maximum(target, there - here - rise * distance, out=target)
    return 1.0 - SHADOW_DARKNESS * np.clip(blocked * 0.8, 0.0, 1.0)


def _ambient_occlusion(height: np.ndarray, diameter: float, strength: float) -> np.ndarray:
    """Less sky where a pixel lies below the mean height of its surroundings."""
    sigma = max(0.45 * diameter, 1.0)
    small = cv2.resize(height, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    surroundings = cv2.GaussianBlur(small, (0, 0), sigma / 4)
    surroundings = cv2.resize(
        surroundings, (height.shape[1], height.shape[0]), interpolation=cv2.INTER_LINEAR
    )
    depth = np.maximum(surroundings - height, 0.0) / max(0.3 * diameter, 1.0)
    return 1.0 - strength * np.clip(depth, 0.0, 0.7)


def _seam_factor(border_distance: np.ndarray, darkness: float) -> np.ndarray:
    """Dark at a granule border (the gap and its contact shadow), fading out over SEAM_WIDTH px."""
    t = np.clip(border_distance / SEAM_WIDTH, 0.0, 1.0)
    return 1.0 - darkness * (1.0 - t) ** 2
