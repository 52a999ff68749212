((call target: (identifier) @_keyword (arguments (alias) @source)) @import
  (#match? @_keyword "^(alias|import|require|use)$"))
