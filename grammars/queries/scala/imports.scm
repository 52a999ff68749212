(import_declaration) @import @source
(package_clause name: (package_identifier) @package) @package_declaration
