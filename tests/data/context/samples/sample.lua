local json = require("json")
local utils = require "store.utils"

local Inventory = {}
Inventory.__index = Inventory

function Inventory.new(items)
  local self = setmetatable({}, Inventory)
  self.items = items
  return self
end

function Inventory:total()
  local sum = 0
  for _, item in ipairs(self.items) do
    sum = sum + utils.price(item)
  end
  return sum
end

local function encode(inventory)
  return json.encode(inventory.items)
end
