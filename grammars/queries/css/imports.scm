(import_statement (string_value) @source) @import
(import_statement (call_expression (arguments (string_value) @source))) @import
