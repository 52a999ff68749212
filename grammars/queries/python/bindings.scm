; Names a Python file binds (codeassist_lsp/context/unbound.py): every identifier under a capture.
(assignment left: (_) @binding)
(for_statement left: (_) @binding)
(for_in_clause left: (_) @binding)
(named_expression name: (identifier) @binding)
(parameters (_) @binding)
(lambda_parameters (_) @binding)
(function_definition name: (identifier) @binding)
(class_definition name: (identifier) @binding)
(as_pattern alias: (_) @binding)
(import_statement) @binding
(import_from_statement) @binding
(global_statement) @binding
(nonlocal_statement) @binding
(except_clause (identifier) @binding)
