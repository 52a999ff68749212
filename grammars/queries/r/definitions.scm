(left_assignment name: (identifier) @name value: (function_definition)) @definition.function
(equals_assignment name: (identifier) @name value: (function_definition)) @definition.function
(program (left_assignment name: (identifier) @name) @definition.variable)
