(call_expression function: (identifier) @reference.call)
(call_expression function: (field_expression field: (identifier) @reference.call))
(field_expression value: (identifier) @reference.object)
(instance_expression (type_identifier) @reference.type)
(type_identifier) @reference.type
