module Store.Inventory (Inventory, total, emptyInventory) where

import qualified Data.Map as Map
import Store.Model (Item(..), price)

data Inventory = Inventory { items :: [Item] }

class Priced a where
  cost :: a -> Int

total :: Inventory -> Int
total inv = sum (map price (items inv))

emptyInventory :: Inventory
emptyInventory = Inventory []

byName :: Inventory -> Map.Map String Item
byName inv = Map.fromList [(name i, i) | i <- items inv]
