; @source is the module path as written (dotted or relative); @name the imported name, @alias its local name.
(import_statement name: (dotted_name) @source) @import
(import_statement name: (aliased_import name: (dotted_name) @source alias: (identifier) @alias)) @import
(import_from_statement module_name: [(dotted_name) (relative_import)] @source name: (dotted_name) @name) @import
(import_from_statement module_name: [(dotted_name) (relative_import)] @source name: (aliased_import name: (dotted_name) @name alias: (identifier) @alias)) @import
(import_from_statement module_name: [(dotted_name) (relative_import)] @source (wildcard_import)) @import
