import { applyDiscount, Discount } from "./pricing";

export class Cart {
  private items: number[] = [];

  total(discount: Discount): number {
    return applyDiscount(this.items.reduce((a, b) => a + b, 0), discount);
  }
}
