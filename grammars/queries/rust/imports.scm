(use_declaration argument: (_) @source) @import
(mod_item name: (identifier) @source !body) @import
(extern_crate_declaration name: (identifier) @source) @import
