open Printf
module M = Map.Make (String)

type item = { name : string; price : int }

let total items =
  List.fold_left (fun acc item -> acc + item.price) 0 items

let print_total items =
  printf "%d\n" (total items)

module Inventory = struct
  let empty = M.empty
  let add name item inv = M.add name item inv
end
