(call_expression function: (identifier) @reference.call)
(call_expression function: (selector_expression field: (field_identifier) @reference.call))
(selector_expression operand: (identifier) @reference.object)
(type_identifier) @reference.type
(composite_literal type: (type_identifier) @reference.type)
