(import_header (identifier) @source) @import
(package_header (identifier) @package) @package_declaration
