(namespace_use_clause [(qualified_name) (name)] @source) @import
(require_once_expression (_) @source) @import
(require_expression (_) @source) @import
(include_expression (_) @source) @import
(include_once_expression (_) @source) @import
(namespace_definition name: (namespace_name) @package) @package_declaration
