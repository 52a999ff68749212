export interface Discount {
  percent: number;
  label: string;
}

export function applyDiscount(price: number, discount: Discount): number {
  return Math.round(price * (100 - discount.percent)) / 100;
}
