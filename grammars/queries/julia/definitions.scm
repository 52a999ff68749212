(function_definition name: (identifier) @name) @definition.function
(short_function_definition name: (identifier) @name) @definition.function
(macro_definition name: (identifier) @name) @definition.macro
(struct_definition name: (identifier) @name) @definition.struct
(abstract_definition name: (identifier) @name) @definition.type
(module_definition name: (identifier) @name) @definition.module
