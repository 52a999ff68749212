(from_clause (identifier) @reference.table)
(join_clause (identifier) @reference.table)
(function_call (identifier) @reference.call)
(create_index_statement table_name: (identifier) @reference.table)
