((call function: (variable name: (identifier) @_require) arguments: (argument_list (string) @source)) @import
  (#eq? @_require "require"))
((call function: (variable name: (identifier) @_require) arguments: (argument_list (expression_list (string) @source))) @import
  (#eq? @_require "require"))
