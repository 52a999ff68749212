import { applyDiscount } from "./pricing.js";

export class Cart {
  constructor() {
    this.items = [];
  }

  total(percent) {
    return applyDiscount(this.items.reduce((a, b) => a + b, 0), percent);
  }
}
