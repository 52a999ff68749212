(using_directive [(identifier) (qualified_name)] @source) @import
(namespace_declaration name: (_) @package) @package_declaration
