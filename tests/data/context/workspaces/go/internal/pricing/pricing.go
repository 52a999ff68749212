package pricing

// ApplyDiscount returns the price after taking percent off.
func ApplyDiscount(price float64, percent float64) float64 {
	return price * (100 - percent) / 100
}
