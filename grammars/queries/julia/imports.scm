(import_statement) @import @source
((call_expression (identifier) @_function (argument_list (string_literal) @source)) @import
  (#eq? @_function "include"))
