"""Try codeassist's actions here: `codeassist action docstring examples/shapes.py --line 7`."""

import math


def ring_area(outer, inner):
    if inner > outer:
        raise ValueError("inner radius larger than outer")
    return math.pi * (outer * outer - inner * inner)
