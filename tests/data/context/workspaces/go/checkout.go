package shop

func Checkout(c *Cart) float64 {
	return c.Total(10)
}
