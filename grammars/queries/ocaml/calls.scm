(application_expression function: (value_path (value_name) @reference.call))
(value_path (module_path (module_name) @reference.object))
(type_constructor_path (type_constructor) @reference.type)
