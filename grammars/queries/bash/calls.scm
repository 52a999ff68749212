(command name: (command_name (word) @reference.call))
(simple_expansion (variable_name) @reference.variable)
(expansion (variable_name) @reference.variable)
