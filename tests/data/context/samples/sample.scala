package store

import store.model.Item
import scala.collection.mutable

trait Priced {
  def price: Int
}

class Inventory(items: Seq[Item]) {
  def total: Int = items.map(_.price).sum

  def cheapest(limit: Int): Seq[Item] = items.filter(_.price < limit)
}

object Inventory {
  def empty: Inventory = new Inventory(Seq.empty)
}

case class Order(id: Long, items: mutable.Buffer[Item])
