(import_spec name: (_) @name path: (interpreted_string_literal) @source) @import
(import_spec path: (interpreted_string_literal) @source) @import
(package_clause (package_identifier) @package) @package_declaration
