package com.acme.store;

import com.acme.store.model.Pricing;
import java.util.ArrayList;
import java.util.List;

public class Cart {
    private final List<Double> items = new ArrayList<>();

    public double total(double percent) {
        double sum = 0;
        for (double item : items) sum += item;
        return Pricing.applyDiscount(sum, percent);
    }
}
