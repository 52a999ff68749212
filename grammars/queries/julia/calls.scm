(call_expression (identifier) @reference.call)
(call_expression (field_expression (identifier) @reference.call))
(typed_parameter type: (identifier) @reference.type)
