(function_definition_statement name: (_) @name) @definition.function
(local_function_definition_statement name: (identifier) @name) @definition.function
(chunk (local_variable_declaration (variable_list (variable name: (identifier) @name))) @definition.variable)
