(exp_apply (exp_name (variable) @reference.call))
(exp_name (qualified_variable (variable) @reference.call))
(type_name (type) @reference.type)
