(call_expression (function_name) @reference.call)
(class_selector (class_name) @reference.class)
(id_selector (id_name) @reference.id)
