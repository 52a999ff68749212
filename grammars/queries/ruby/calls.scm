(call method: (identifier) @reference.call)
(call receiver: (constant) @reference.type)
(superclass (constant) @reference.type)
(constant) @reference.type
