from geometry import area


def summary(radii):
    # area of each circle
    return [round(area(r), 2) for r in radii]
