package com.acme.store.model;

public final class Pricing {
    public static double applyDiscount(double price, double percent) {
        return price * (100 - percent) / 100;
    }
}
