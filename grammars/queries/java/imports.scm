(import_declaration [(scoped_identifier) (identifier)] @source) @import
(package_declaration [(scoped_identifier) (identifier)] @package) @package_declaration
