module Store

using LinearAlgebra
import Base: show
include("model.jl")

struct Inventory
    items::Vector{Item}
end

abstract type Priced end

function total(inv::Inventory)
    return sum(price(item) for item in inv.items)
end

scaled(inv::Inventory, k) = total(inv) * k

end
