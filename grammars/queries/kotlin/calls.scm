(call_expression (simple_identifier) @reference.call)
(call_expression (navigation_expression (navigation_suffix (simple_identifier) @reference.call)))
(navigation_expression (simple_identifier) @reference.object)
(user_type (type_identifier) @reference.type)
