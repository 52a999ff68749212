(call_expression function: (identifier) @reference.call)
(call_expression function: (field_expression field: (field_identifier) @reference.call))
(type_identifier) @reference.type
(sizeof_expression type: (type_descriptor type: (type_identifier) @reference.type))
