(call function: (identifier) @reference.call)
(call function: (namespace_get function: (identifier) @reference.call))
