(open_module (module_path) @source) @import
(include_module (module_path) @source) @import
