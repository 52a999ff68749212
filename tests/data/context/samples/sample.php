<?php
namespace Store;

use Store\Model\Item;
require_once "helpers.php";

class Inventory
{
    private array $items = [];

    public function add(Item $item): void
    {
        $this->items[] = $item;
    }

    public function total(): int
    {
        return array_sum(array_map(fn($i) => $i->price(), $this->items));
    }
}

function format_total(Inventory $inventory): string
{
    return number_format($inventory->total());
}
