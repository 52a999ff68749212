(function_definition name: (name) @name) @definition.function
(class_declaration name: (name) @name) @definition.class
(interface_declaration name: (name) @name) @definition.interface
(trait_declaration name: (name) @name) @definition.trait
(method_declaration name: (name) @name) @definition.method
(const_element (name) @name) @definition.constant
