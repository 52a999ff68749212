package shop

import "example.com/shop/internal/pricing"

type Cart struct {
	Items []float64
}

func (c *Cart) Total(percent float64) float64 {
	sum := 0.0
	for _, item := range c.Items {
		sum += item
	}
	return pricing.ApplyDiscount(sum, percent)
}
