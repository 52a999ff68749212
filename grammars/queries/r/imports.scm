((call function: (identifier) @_function arguments: (arguments (_) @source)) @import
  (#match? @_function "^(library|require|requireNamespace|source)$"))
