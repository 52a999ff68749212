(value_definition (let_binding pattern: (value_name) @name)) @definition.function
(type_definition (type_binding name: (type_constructor) @name)) @definition.type
(module_definition (module_binding name: (module_name) @name)) @definition.module
(external (value_name) @name) @definition.function
(exception_definition (constructor_declaration (constructor_name) @name)) @definition.type
