(method_invocation name: (identifier) @reference.call)
(method_invocation object: (identifier) @reference.object)
(object_creation_expression type: (type_identifier) @reference.type)
(type_identifier) @reference.type
(method_reference (identifier) @reference.call)
