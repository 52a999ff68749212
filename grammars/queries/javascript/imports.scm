(import_statement (import_clause (identifier) @name) source: (string) @source) @import
(import_statement (import_clause (named_imports (import_specifier name: (identifier) @name))) source: (string) @source) @import
(import_statement (import_clause (namespace_import (identifier) @name)) source: (string) @source) @import
(import_statement source: (string) @source) @import
(export_statement source: (string) @source) @import
; CommonJS: const name = require("x") and const { a, b } = require("x")
(variable_declarator
  name: (identifier) @name
  value: (call_expression function: (identifier) @_require arguments: (arguments (string) @source))
  (#eq? @_require "require")) @import
(variable_declarator
  name: (object_pattern [(shorthand_property_identifier_pattern) @name (pair_pattern value: (identifier) @name)])
  value: (call_expression function: (identifier) @_require arguments: (arguments (string) @source))
  (#eq? @_require "require")) @import
