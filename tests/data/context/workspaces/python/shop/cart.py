from .pricing import apply_discount


class Cart:
    def __init__(self) -> None:
        self.items: list[float] = []

    def total(self, percent: float) -> float:
        return apply_discount(sum(self.items), percent)
