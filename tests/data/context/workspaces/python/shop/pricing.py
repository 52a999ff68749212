def apply_discount(price: float, percent: float) -> float:
    """Price after taking `percent` off."""
    return round(price * (1 - percent / 100), 2)
