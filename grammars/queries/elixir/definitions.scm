((call target: (identifier) @_keyword
   (arguments [(identifier) @name
               (call target: (identifier) @name)
               (binary_operator left: (call target: (identifier) @name))])) @definition.function
  (#match? @_keyword "^(def|defp|defmacro|defmacrop|defguard|defguardp|defdelegate)$"))
((call target: (identifier) @_keyword (arguments (alias) @name)) @definition.module
  (#match? @_keyword "^(defmodule|defprotocol|defimpl)$"))
