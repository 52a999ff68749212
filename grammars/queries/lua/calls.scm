(call function: (variable name: (identifier) @reference.call))
(call function: (variable field: (identifier) @reference.call))
(call function: (variable method: (identifier) @reference.call))
(variable table: (identifier) @reference.object)
