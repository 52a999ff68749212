package store

import (
	"fmt"
	"example.com/store/model"
)

type Inventory struct {
	items []model.Item
}

type Priced interface {
	Price() int
}

func NewInventory(items []model.Item) *Inventory {
	return &Inventory{items: items}
}

func (i *Inventory) Total() int {
	total := 0
	for _, item := range i.items {
		total += item.Price()
	}
	fmt.Println(total)
	return total
}
