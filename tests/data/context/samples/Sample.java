package com.example.store;

import java.util.List;
import com.example.store.model.Item;

public class Inventory {
    private final List<Item> items;

    public Inventory(List<Item> items) {
        this.items = items;
    }

    public int total() {
        return items.stream().mapToInt(Item::price).sum();
    }
}

interface Priced {
    int price();
}
