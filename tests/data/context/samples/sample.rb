require "json"
require_relative "model/item"

module Store
  class Inventory
    def initialize(items)
      @items = items
    end

    def total
      @items.sum { |item| item.price }
    end

    def self.load(path)
      new(JSON.parse(File.read(path)))
    end
  end
end
