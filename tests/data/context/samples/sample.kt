package com.example.store

import com.example.store.model.Item
import kotlin.math.max

interface Priced {
    fun price(): Int
}

class Inventory(private val items: List<Item>) {
    fun total(): Int = items.sumOf { it.price() }

    fun best(): Int {
        var best = 0
        for (item in items) best = max(best, item.price())
        return best
    }
}

object Registry {
    val inventories = mutableListOf<Inventory>()
}

fun emptyInventory(): Inventory = Inventory(listOf())
