defmodule Store.Inventory do
  alias Store.Model.Item
  import Enum, only: [sum: 1, map: 2]
  require Logger

  defstruct items: []

  def new(items), do: %__MODULE__{items: items}

  def total(%__MODULE__{items: items}) do
    items |> map(&Item.price/1) |> sum()
  end

  defp log_total(inventory) do
    Logger.info("total: #{total(inventory)}")
  end
end
