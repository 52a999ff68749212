(import_statement (import_clause (identifier) @name) source: (string) @source) @import
(import_statement (import_clause (named_imports (import_specifier name: (identifier) @name))) source: (string) @source) @import
(import_statement (import_clause (namespace_import (identifier) @name)) source: (string) @source) @import
(import_statement source: (string) @source) @import
(export_statement source: (string) @source) @import
(import_alias (identifier) @name (nested_identifier) @source) @import
